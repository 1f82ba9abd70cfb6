/*
 * demo.test.mjs: `make demo` as a newcomer runs it.  It must print a page
 * URL per demo user and a psql line, serve the page, accept the printed
 * tokens, deliver what the psql line sends, stop cleanly on Ctrl-C
 * (SIGINT to its process group, as a terminal sends it), start again after
 * being killed with SIGKILL, and say so when its port is taken.
 */
import assert from 'node:assert/strict';
import {execFile, execFileSync, spawn} from 'node:child_process';
import {existsSync, readFileSync} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import {after, test} from 'node:test';
import {promisify} from 'node:util';

import WebSocket from '../js/node_modules/ws/wrapper.mjs';

const TOP = new URL('../../', import.meta.url).pathname;
const DATA = `${TOP}demo/data`;
const PID_FILE = `${DATA}/cluster/pgdata/postmaster.pid`;
const PORT = 8765;
const running = new Set();

after(async () => {
	for (const d of running)
		await d.stop('SIGINT').catch(() => {});
});

/* startDemo runs `make demo` in a process group of its own. */
function startDemo() {
	const child = spawn('make', ['--no-print-directory', '-s', 'demo'], {
		cwd: TOP, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
		env: {...process.env, MAKEFLAGS: '', MAKELEVEL: ''},
	});
	const d = {child, out: '', err: '', code: null};

	child.stdout.on('data', (b) => {
		d.out += b;
	});
	child.stderr.on('data', (b) => {
		d.err += b;
	});
	d.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
		d.code = code ?? signal;
		running.delete(d);
		resolve(d.code);
	}));
	/*
	 * stop signals the whole group, the way Ctrl-C in a terminal does.  If
	 * make demo outlives it, the error says what was still running and
	 * what it printed last, and the demo is killed with its cluster, so
	 * that one failure does not leave port 8765 taken for the next test.
	 */
	d.stop = async (sig) => {
		try {
			process.kill(-child.pid, sig);
		} catch {
			/* gone already */
		}
		try {
			return await within(d.exited, 60000, 'make demo to exit');
		} catch (e) {
			e.message += `\n${diagnose(d)}`;
			await kill(d);
			throw e;
		}
	};
	running.add(d);
	return d;
}

/* diagnose: make demo's processes, the postmaster's, and its last output. */
function diagnose(d) {
	let ps = '';

	try {
		ps = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,stat=,etime=,wchan:14=,args='], {encoding: 'utf8'});
	} catch (e) {
		ps = `(ps failed: ${e.message})`;
	}
	const procs = ps.split('\n').filter((l) => {
		const f = l.trim().split(/\s+/);

		return f[1] === String(d.child.pid) || /postgres(:| -D)/.test(l);
	}).map((l) => l.trim().replace(/\s+/g, ' '));
	const last = (t) => t.trim().split('\n').slice(-2).join(' | ');

	return [`still running: ${procs.join('; ') || 'nothing'}`,
		`its stdout ended: ${last(d.out)}`, `its stderr ended: ${last(d.err)}`].join('\n');
}

/* kill: make demo's group and the cluster it started, without asking. */
async function kill(d) {
	try {
		process.kill(-d.child.pid, 'SIGKILL');
	} catch {
		/* gone already */
	}
	let pm = 0;

	try {
		pm = Number(readFileSync(PID_FILE, 'utf8').split('\n')[0]);
	} catch {
		return;
	}
	for (const sig of ['SIGQUIT', 'SIGKILL']) {
		try {
			process.kill(pm, sig);
		} catch {
			return;
		}
		for (let i = 0; i < 50 && alive(pm); i++)
			await new Promise((r) => setTimeout(r, 100));
		if (!alive(pm))
			return;
	}
}

function within(promise, ms, what) {
	let t;

	return Promise.race([promise, new Promise((_, reject) => {
		t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
	})]).finally(() => clearTimeout(t));
}

/* started waits for the printed URLs (or the end of make demo). */
async function started(d) {
	const done = () => d.out.includes('Press Ctrl-C') || d.code !== null;

	await within(new Promise((resolve) => {
		const check = () => (done() ? resolve() : null);

		d.child.stdout.on('data', check);
		d.exited.then(resolve);
		check();
	}), 240000, 'make demo to print its URLs');
	assert.equal(d.code, null, `make demo ended early:\n${d.out}\n${d.err}`);
	const urls = {};

	for (const m of d.out.matchAll(/^\s+(\w+)\s+\((dispatcher|driver)\)\s+(http:\/\/\S+)$/gm))
		urls[m[1]] = {role: m[2], url: m[3]};
	const psql = (d.out.match(/^\s+(psql .*)$/m) || [])[1];

	return {urls, psql};
}

/*
 * alive: the pid runs and is not a zombie.  An exited postmaster is
 * reparented to PID 1, which in some containers never reaps it.
 */
const alive = (pid) => {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');

		return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
	} catch {
		return false;
	}
};

function get(url) {
	return new Promise((resolve, reject) => {
		http.get(url, (res) => {
			let body = '';

			res.on('data', (c) => {
				body += c;
			});
			res.on('end', () => resolve({status: res.statusCode, body}));
		}).on('error', reject);
	});
}

/* connect opens the page's WebSocket with the page URL's token; resolves {ws, frames, ready}. */
function connect(pageUrl) {
	const u = new URL(pageUrl);
	const ws = new WebSocket(`ws://${u.host}/ws?token=${u.searchParams.get('token')}`);
	const frames = [];

	return within(new Promise((resolve, reject) => {
		ws.on('message', (data) => {
			const f = JSON.parse(String(data));

			frames.push(f);
			if (f.type === 'ready')
				resolve({ws, frames, ready: f});
		});
		ws.on('error', reject);
	}), 10000, 'ready');
}

/* closed closes a socket and waits for the server's close frame. */
function closed(ws) {
	return within(new Promise((resolve) => {
		ws.on('close', resolve);
		ws.close();
	}), 10000, 'the close of the WebSocket');
}

function portAnswers(port) {
	return new Promise((resolve) => {
		const s = net.connect(port, '127.0.0.1');

		s.on('connect', () => {
			s.destroy();
			resolve(true);
		});
		s.on('error', () => resolve(false));
	});
}

test('make demo: URLs per person, a working page, tokens and psql line; Ctrl-C stops it cleanly', async () => {
	const d = startDemo();
	const {urls, psql} = await started(d);

	assert.deepEqual(Object.keys(urls).sort(), ['alex', 'kim', 'lee', 'maria', 'sam']);
	assert.equal(urls.alex.role, 'dispatcher');
	assert.equal(urls.sam.role, 'driver');
	assert.match(urls.alex.url, new RegExp(`^http://[^/]+:${PORT}/\\?token=`));
	const pmpid = Number(readFileSync(PID_FILE, 'utf8').split('\n')[0]);

	const page = await get(urls.sam.url);

	assert.equal(page.status, 200);
	assert.match(page.body, /<script type="module" src="\/app.js">/);

	const {ws, frames, ready} = await connect(urls.sam.url);

	assert.equal(ready.userId, 'sam');
	const fleet = ready.channels.find((c) => c.name === 'fleet');

	assert.ok(fleet && fleet.type === 'group' && fleet.lastSeq >= 2, 'the fleet channel, with messages');
	assert.ok(ready.channels.filter((c) => c.type === 'direct').length >= 1, 'a direct channel with a dispatcher');
	assert.ok(psql && psql.includes(fleet.id), `a psql line for the fleet channel: ${psql}`);

	await promisify(execFile)('bash', ['-c', psql]);
	await within(new Promise((resolve) => {
		const check = () => frames.some((f) => f.type === 'message' && f.message.content === 'Hello from SQL') && resolve();

		ws.on('message', check);
		check();
	}), 10000, 'the message sent with the psql line');
	ws.close();

	/* the notification sender: the seeded messages reached users with no page open */
	await within(new Promise((resolve) => {
		const check = () => /^push → kim\s+from alex: /m.test(d.out) && resolve();

		d.child.stdout.on('data', check);
		check();
	}), 30000, 'the notification sender to print a push for kim');
	assert.match(d.out, /^push → kim\s+in #fleet: 2 new messages, the latest: maria: Reminder/m);

	await d.stop('SIGINT');
	assert.match(d.out, /stopped/);
	assert.equal(alive(pmpid), false, 'the postmaster is gone');
	assert.equal(existsSync(DATA), false, 'demo/data is removed');
	assert.equal(await portAnswers(PORT), false, 'nothing listens on 8765 any more');
});

test('make demo after a crash (SIGKILL) cleans up and runs again', async () => {
	const first = startDemo();

	await started(first);
	const oldPid = Number(readFileSync(PID_FILE, 'utf8').split('\n')[0]);

	await first.stop('SIGKILL');	/* make and demo/run die; PostgreSQL lives on */
	assert.equal(alive(oldPid), true, 'the crash left the cluster running');

	const second = startDemo();
	let failure = null;

	try {
		const {urls} = await started(second);

		assert.match(second.out, /cleaning up a previous demo/);
		assert.equal(alive(oldPid), false, 'the leftover postmaster was stopped');
		const {ws, ready} = await connect(urls.maria.url);

		assert.equal(ready.userId, 'maria');
		await closed(ws);
	} catch (e) {
		failure = e;
	}
	/*
	 * stopped also on failure, so that it does not hold the port for the
	 * next test; the first error is the one reported
	 */
	try {
		await second.stop('SIGINT');
	} catch (e) {
		if (failure)
			failure.message += `\nthen stopping it: ${e.message}`;
		else
			failure = e;
	}
	if (failure)
		throw failure;
	assert.equal(existsSync(DATA), false);
});

test('make demo says clearly when port 8765 is taken', async () => {
	const blocker = net.createServer();

	await new Promise((resolve, reject) => {
		blocker.once('error', reject);
		blocker.listen(PORT, '127.0.0.1', resolve);
	});
	try {
		const d = startDemo();
		const code = await within(d.exited, 240000, 'make demo to give up');

		assert.notEqual(code, 0);
		assert.match(d.err, /port 8765 is already in use/);
		assert.equal(existsSync(PID_FILE), false, 'no cluster was started');
		assert.equal(existsSync(DATA), false, 'nothing is left in demo/data');
	} finally {
		blocker.close();
	}
});
