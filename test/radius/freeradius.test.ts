import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../helpers/require.ts';
import { DemoValidator, radclient } from './helpers.ts';

const skip = haveBinary('/usr/sbin/freeradius', 'freeradius freeradius-rest') || haveBinary('/usr/lib/freeradius/rlm_rest.so', 'freeradius-rest') || haveBinary('radclient', 'freeradius-utils');
const FR_SECRET = 'fr-test-secret';

/**
 * The `rest otpd` module and the `authenticate` section are the ones docs/radius.md shows
 * for FreeRADIUS in front of otpd: rlm_rest POSTs to /validate/check, and unlang reads
 * LinOTP's JSON envelope (always HTTP 200) from REST-HTTP-Body.
 */
function radiusdConf(dir: string, radiusPort: number, httpPort: number): string {
  return `
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = ${dir}/log
raddbdir = ${dir}
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
certdir = \${confdir}/certs
cadir = \${confdir}/certs
run_dir = ${dir}/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = \${run_dir}/\${name}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {
  destination = stdout
  auth = yes
}
security {
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = yes
}
thread pool {
  start_servers = 1
  max_servers = 2
  min_spare_servers = 1
  max_spare_servers = 2
}
client localhost {
  ipaddr = 127.0.0.1
  secret = ${FR_SECRET}
}
modules {
  expr {
  }
  always ok {
    rcode = ok
  }
  always reject {
    rcode = reject
  }
  always handled {
    rcode = handled
  }
  rest otpd {
    connect_uri = "http://127.0.0.1:${httpPort}"
    connect_timeout = 2.0
    authenticate {
      uri = "\${..connect_uri}/validate/check"
      method = 'post'
      body = 'post'
      data = "user=%{urlquote:%{User-Name}}&pass=%{urlquote:%{User-Password}}&client=%{urlquote:%{%{NAS-IP-Address}:-%{Packet-Src-IP-Address}}}%{control:Tmp-String-2}"
      force_to = 'plain'
      timeout = 10
    }
    pool {
      start = 0
      min = 0
      max = 4
      spare = 1
      uses = 0
      retry_delay = 30
      lifetime = 0
      idle_timeout = 60
    }
  }
}
server default {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = ${radiusPort}
  }
  authorize {
    if (&State) {
      update control {
        &Tmp-String-2 := "&transactionid=%{urlquote:%{string:State}}"
      }
    }
    update control {
      Auth-Type := otpd
    }
  }
  authenticate {
    Auth-Type otpd {
      otpd
      if (&reply:REST-HTTP-Body =~ /"result":[[:space:]]*\\{[[:space:]]*"status":[[:space:]]*true,[[:space:]]*"value":[[:space:]]*true/) {
        update control {
          &Tmp-String-0 := "accept"
        }
      }
      elsif (&reply:REST-HTTP-Body =~ /"transactionid":[[:space:]]*"([0-9A-Za-z_.-]+)"/) {
        update control {
          &Tmp-String-1 := "%{1}"
        }
        if (&reply:REST-HTTP-Body =~ /"message":[[:space:]]*"([^"\\\\]*)"/) {
          update reply {
            &Reply-Message := "%{1}"
          }
        }
      }
      update reply {
        &REST-HTTP-Body !* ANY
        &REST-HTTP-Status-Code !* ANY
      }
      if (&control:Tmp-String-0 == "accept") {
        ok
      }
      elsif (&control:Tmp-String-1) {
        update reply {
          &State := "%{control:Tmp-String-1}"
        }
        update control {
          &Response-Packet-Type := Access-Challenge
        }
        handled
      }
      else {
        reject
      }
    }
  }
}
`;
}

/** Answers like otpd's /validate/check (LinOTP envelope, HTTP 200 for every outcome, indent 3). */
function validateCheckServer(validator: DemoValidator, requests: URLSearchParams[]): http.Server {
  return http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += String(d)));
    req.on('end', async () => {
      const params = new URLSearchParams(body);
      requests.push(params);
      const result = await validator.authenticate({
        user: params.get('user') ?? '',
        password: params.get('pass') ?? '',
        transactionId: params.get('transactionid') ?? undefined,
        client: params.get('client') ?? '',
        clientName: 'freeradius',
      });
      const envelope: Record<string, unknown> = {
        jsonrpc: '2.0802',
        result: { status: true, value: result.kind === 'accept' },
        version: 'otpd 0.1.0',
        versionNumber: '0.1.0',
        id: 0,
      };
      if (result.kind === 'challenge') {
        envelope.detail = { transactionid: result.transactionId, message: result.message, state: result.transactionId };
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(envelope, null, 3));
    });
  });
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  const { port } = s.address();
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

describe('FreeRADIUS (rlm_rest) in front of /validate/check', { skip }, () => {
  let dir: string;
  let freeradius: ChildProcess | undefined;
  let httpServer: http.Server;
  let target: string;
  let log = '';
  const requests: URLSearchParams[] = [];
  const validator = new DemoValidator({ now: () => Date.now() });

  before(async () => {
    httpServer = validateCheckServer(validator, requests);
    await new Promise<void>((res) => httpServer.listen(0, '127.0.0.1', () => res()));
    const httpPort = (httpServer.address() as AddressInfo).port;
    dir = mkdtempSync(join(tmpdir(), 'otpd-freeradius-'));
    mkdirSync(join(dir, 'log'));
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'dictionary'), '');
    const radiusPort = await freeUdpPort();
    writeFileSync(join(dir, 'radiusd.conf'), radiusdConf(dir, radiusPort, httpPort));
    target = `127.0.0.1:${radiusPort}`;
    const child = spawn('/usr/sbin/freeradius', ['-X', '-d', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    freeradius = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`FreeRADIUS did not start:\n${log.slice(-3000)}`)), 15_000);
      const onData = (d: Buffer) => {
        log += String(d);
        if (log.includes('Ready to process requests')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`FreeRADIUS exited with ${code}:\n${log.slice(-3000)}`));
      });
    });
  });

  after(async () => {
    if (freeradius && freeradius.exitCode === null) {
      const exited = new Promise((res) => freeradius!.once('exit', res));
      freeradius.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((res) => httpServer?.close(() => res()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('password+OTP → Access-Accept; the form POST carries user, pass and client', async () => {
    const otp = validator.otp('alice');
    const r = await radclient({ target, secret: FR_SECRET, input: `User-Name=alice,User-Password=alicepw${otp},NAS-IP-Address=192.0.2.20` });
    assert.equal(r.reply, 'Access-Accept', `${r.output}\n${log.slice(-2000)}`);
    const last = requests.at(-1)!;
    assert.equal(last.get('user'), 'alice');
    assert.equal(last.get('pass'), `alicepw${otp}`);
    assert.equal(last.get('client'), '192.0.2.20');
    assert.equal(last.has('transactionid'), false);
  });

  it('wrong password (HTTP 200, value false) → Access-Reject', async () => {
    const r = await radclient({ target, secret: FR_SECRET, input: 'User-Name=alice,User-Password=wrong' });
    assert.equal(r.reply, 'Access-Reject', r.output);
  });

  it('challenge: detail.transactionid becomes State, detail.message Reply-Message; the State comes back as transactionid', async () => {
    const first = await radclient({ target, secret: FR_SECRET, input: 'User-Name=bob,User-Password=bobpw' });
    assert.equal(first.reply, 'Access-Challenge', first.output);
    assert.equal(first.attributes['Reply-Message'], 'Enter the OTP sent to your phone');
    const state = first.attributes.State;
    assert.equal(Buffer.from(state.slice(2), 'hex').toString(), 'tx-1');
    const second = await radclient({ target, secret: FR_SECRET, input: `User-Name=bob,User-Password=${validator.otp('bob')},State=${state}` });
    assert.equal(second.reply, 'Access-Accept', second.output);
    assert.equal(requests.at(-1)?.get('transactionid'), 'tx-1');
  });
});
