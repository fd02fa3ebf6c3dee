#!/usr/bin/env node
// Container health check (Dockerfile HEALTHCHECK): GET /readyz on this host's otpd (database
// reachable, migrations current); exit 0 when it answers 200, else 1. Speaks HTTPS when
// OTPD_TLS_CERT is set, without verifying the certificate: it checks that otpd is ready, the
// clients check the certificate.
import http from 'node:http';
import https from 'node:https';

const port = Number(process.env.OTPD_PORT || 5001);
const tls = Boolean(process.env.OTPD_TLS_CERT);
const req = (tls ? https : http).get(
  { host: '127.0.0.1', port, path: '/readyz', timeout: 4000, ...(tls ? { rejectUnauthorized: false } : {}) },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', () => process.exit(1));
