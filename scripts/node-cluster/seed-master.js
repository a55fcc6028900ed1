'use strict';
// The seed article's master, kept faithful: ONE listening handle is created
// here with net._createServerHandle() and sent to WORKERS forked workers,
// which each call listen() on it and accept connections themselves
// (onconnection). The kernel decides which worker's accept() wins.
//
// Changes from the seed (each marked "CHANGE" below):
//   - HOST (default 127.0.0.1), PORT (default 0 = any free port) and WORKERS
//     (default 4) come from environment variables;
//   - the real port is learned with handle.getsockname();
//   - a line protocol on stdout (see README.md): "worker <pid> listening"
//     from each worker, then "ready <host>:<port>" from here; on SIGTERM or
//     SIGINT the workers are told to stop, each prints
//     "worker <pid> got <C> connections <R> requests", then "done" from here;
//   - errors go to stderr and make the master exit non-zero.
//
// Every stdout line is written with ONE write() call so that lines from the
// master and the workers (which inherit this stdout) never interleave.

const net = require('net');
const util = require('util');
const path = require('path');
const fork = require('child_process').fork;

const workers = [];
let failed = false;

// CHANGE: configuration from the environment instead of 0.0.0.0:3000 and 4.
const HOST = process.env.HOST || '127.0.0.1';
const PORT = parseIntEnv('PORT', 0, 0, 65535);
const WORKERS = parseIntEnv('WORKERS', 4, 1, 1024);
const STOP_TIMEOUT_MS = 10000;

function parseIntEnv(name, def, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    fail(`${name}=${raw} is not a whole number in ${min}..${max}`);
  }
  return v;
}

function line(s) {
  process.stdout.write(s + '\n');
}

function fail(msg) {
  process.stderr.write(`seed-master: ${msg}\n`);
  for (const w of workers) {
    if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  }
  process.exit(1);
}

// A closed reader of our stdout must not crash the master with EPIPE.
process.stdout.on('error', () => {});

// The seed: var handle = net._createServerHandle('0.0.0.0', 3000);
const handle = net._createServerHandle(HOST, PORT);
// _createServerHandle returns a negative errno (a number) on failure.
if (typeof handle === 'number') {
  fail(`cannot bind ${HOST}:${PORT}: ${util.getSystemErrorName(handle)}`);
}
// CHANGE: learn the real port (PORT=0 binds any free port).
const sockname = {};
// libuv delays a bind error (e.g. EADDRINUSE) to listen()/getsockname().
const gerr = handle.getsockname(sockname);
if (gerr) fail(`cannot bind ${HOST}:${PORT}: ${util.getSystemErrorName(gerr)}`);
const port = sockname.port;

let listening = 0;
let exited = 0;
let stopping = false;
let ready = false;

// The seed: for (var i = 0; i < 4; i++) { fork('./worker').send({}, handle); }
for (let i = 0; i < WORKERS; i++) {
  const w = fork(path.join(__dirname, 'seed-worker.js'));
  workers.push(w);
  w.on('message', (m) => {
    if (m && m.cmd === 'listening') {
      listening++;
      if (listening === WORKERS && !ready && !stopping) {
        ready = true;
        line(`ready ${HOST}:${port}`);
      }
    }
  });
  w.on('error', (err) => {
    process.stderr.write(`seed-master: worker ${w.pid}: ${err.message}\n`);
  });
  w.on('exit', (code, signal) => {
    exited++;
    if (!stopping) {
      // A worker that dies on its own is an error: say so, stop the others.
      process.stderr.write(
        `seed-master: worker ${w.pid} exited unexpectedly (code ${code}, signal ${signal})\n`);
      if (!ready) fail('a worker failed before all were listening');
      failed = true;
      stop();
    }
    if (exited === WORKERS) finish();
  });
  // The seed sends an empty message with the handle attached; the worker
  // does everything else.
  w.send({}, handle);
}

function stop() {
  if (stopping) return;
  stopping = true;
  for (const w of workers) {
    if (w.exitCode !== null || w.signalCode !== null) continue;
    // Ask over IPC; fall back to SIGTERM (the worker handles both alike).
    if (w.connected) {
      w.send({ cmd: 'stop' }, (err) => { if (err) w.kill('SIGTERM'); });
    } else {
      w.kill('SIGTERM');
    }
  }
  setTimeout(() => {
    process.stderr.write('seed-master: workers did not exit in time, killing them\n');
    for (const w of workers) {
      if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    }
    process.exit(1);
  }, STOP_TIMEOUT_MS).unref();
}

function finish() {
  handle.close();
  line('done');
  process.exit(failed ? 1 : 0);
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
