/**
 * The bench's mail relay on loopback: a plain SMTP server (RFC 5321 greeting, EHLO/HELO, MAIL,
 * RCPT, DATA with dot-stuffed content, RSET, NOOP, QUIT) that accepts every message and counts it.
 *
 * Not the `smtp-server` package the tests use: that one holds every new connection's greeting
 * back for 100 ms to catch clients that talk too soon (`init()`'s `readyTimer`, not configurable),
 * so each e-mail trigger of case (4) measured that pause and not otpd. A relay on the same LAN
 * greets at once.
 */
import net from 'node:net';

export interface SmtpSink {
  port: number;
  /** Messages accepted so far (after their final `.`). */
  count(): number;
  close(): void;
}

export function startSmtpSink(): Promise<SmtpSink> {
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
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as net.AddressInfo;
    resolve({
      port,
      count: () => accepted,
      close: () => {
        server.close();
        for (const s of sockets) s.destroy();
      },
    });
  }));
}
