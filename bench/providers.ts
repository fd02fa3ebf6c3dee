/**
 * The bench's providers on loopback (bench/run.ts, bench/cpu-ab.ts): an HTTP SMS gateway that
 * answers `OK`, and a mail relay.
 *
 * The mail relay is a plain SMTP server (RFC 5321 greeting, EHLO/HELO, MAIL,
 * RCPT, DATA with dot-stuffed content, RSET, NOOP, QUIT) that accepts every message and counts it.
 *
 * Not the `smtp-server` package the tests use: that one holds every new connection's greeting
 * back for 100 ms to catch clients that talk too soon (`init()`'s `readyTimer`, not configurable),
 * so each e-mail trigger of case (4) measured that pause and not otpd. A relay on the same LAN
 * greets at once.
 */
import http from 'node:http';
import net from 'node:net';

/** An HTTP SMS gateway on loopback that answers every request `OK` (port 0: any free one). */
export function startGateway(port = 0): Promise<{ url: string; count: () => number; close: () => void }> {
  let n = 0;
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.end('OK');
    });
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => {
    const { port: bound } = srv.address() as net.AddressInfo;
    resolve({ url: `http://127.0.0.1:${bound}/send`, count: () => n, close: () => srv.close() });
  }));
}

export interface SmtpSink {
  port: number;
  /** Messages accepted so far (after their final `.`). */
  count(): number;
  close(): void;
}

/** The mail relay (port 0: any free one). */
export function startSmtpSink(port = 0): Promise<SmtpSink> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let inData = false;
    let buffered = '';
    const reply = (line: string) => socket.write(`${line}\r\n`);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            accepted++;
            reply('250 OK: queued');
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') {
          socket.write('250-bench.example.org\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n');
        } else if (verb === 'HELO' || verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') {
          reply('250 OK');
        } else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>');
        } else if (verb === 'QUIT') {
          reply('221 Bye');
          socket.end();
        } else {
          reply('502 Command not implemented');
        }
      }
    });
    reply('220 bench.example.org ESMTP');
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => {
    resolve({
      port: (server.address() as net.AddressInfo).port,
      count: () => accepted,
      close: () => {
        server.close();
        for (const s of sockets) s.destroy();
      },
    });
  }));
}
