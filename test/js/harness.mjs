/*
 * harness.mjs: what the JS and browser suites need around the server that
 * test/js/lib.sh started (its settings come in the environment): SQL as the
 * superuser, tokens, the worker's pid, restarts, and waiting for conditions
 * under deadlines.  No sleeps: everything polls a condition or waits for an
 * event, and fails with a message naming what it waited for.
 */
import {execFile} from 'node:child_process';
import {createHmac} from 'node:crypto';
import http from 'node:http';
import {promisify} from 'node:util';

const run = promisify(execFile);

function need(name) {
	const v = process.env[name];

	if (!v)
		throw new Error(`${name} is not set: run the suite through its run script`);
	return v;
}

export const env = {
	get dir() { return need('CHAT_PG_DIR'); },
	get data() { return need('CHAT_PG_DATA'); },
	get pgPort() { return need('PGPORT'); },
	get chatPort() { return Number(need('CHAT_PORT')); },
	get secret() { return need('CHAT_SECRET'); },
};

export const wsUrl = () => `ws://127.0.0.1:${env.chatPort}/ws`;
export const httpUrl = (path = '/') => `http://127.0.0.1:${env.chatPort}${path}`;

let pgBin = null;

async function bin(name) {
	if (!pgBin)
		pgBin = (await run('pg_config', ['--bindir'])).stdout.trim();
	return `${pgBin}/${name}`;
}

/* sql runs a statement as postgres and returns psql's unaligned output. */
export async function sql(query) {
	const {stdout} = await run(await bin('psql'),
		['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', env.dir, '-p', env.pgPort,
			'-U', 'postgres', '-d', 'postgres', '-c', query],
		{maxBuffer: 64 << 20});

	return stdout.trim();
}

/* lit quotes a string as an SQL literal. */
export const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/* hs256 signs claims with the suite's secret (chat_mint_token's fallback). */
export function hs256(claims) {
	const head = b64url(JSON.stringify({alg: 'HS256', typ: 'JWT'}));
	const body = b64url(JSON.stringify(claims));
	const sig = createHmac('sha256', env.secret).update(`${head}.${body}`).digest('base64url');

	return `${head}.${body}.${sig}`;
}

let mintInSql = null;

/*
 * token mints a token for user valid ttlSeconds, with chat_mint_token when
 * the extension declares it, else signed here with the same secret.
 */
export async function token(user, ttlSeconds = 3600) {
	if (mintInSql === null)
		mintInSql = (await sql("SELECT count(*) FROM pg_proc WHERE proname = 'chat_mint_token'")) !== '0';
	if (mintInSql)
		return sql(`SELECT chat_mint_token(${lit(user)}, make_interval(secs => ${ttlSeconds}))`);
	const now = Math.floor(Date.now() / 1000);

	return hs256({sub: user, iat: now, exp: now + ttlSeconds});
}

/* channel creates a channel and returns its id. */
export function channel(type, name, members) {
	const arr = `ARRAY[${members.map(lit).join(',')}]::text[]`;

	return sql(`SELECT chat_create_channel(${lit(type)}, ${name == null ? 'NULL' : lit(name)}, ${arr})`);
}

let uniq = 0;

/* users returns fresh user ids, so that tests never share state. */
export function users(...names) {
	const tag = `${process.pid}x${++uniq}`;

	return names.map((n) => `${n}-${tag}`);
}

/* waitFor polls cond until it returns a truthy value, which it returns. */
export async function waitFor(cond, {timeout = 20000, interval = 20, what = 'a condition'} = {}) {
	const deadline = Date.now() + timeout;
	let last;

	for (;;) {
		try {
			const v = await cond();

			if (v)
				return v;
		} catch (e) {
			last = e;
		}
		if (Date.now() > deadline)
			throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
				(last ? ` (last error: ${last.message})` : ''));
		await new Promise((r) => setTimeout(r, interval));
	}
}

/* nextEvent resolves with the next event of emitter that pred accepts. */
export function nextEvent(emitter, event, pred = () => true, timeout = 20000) {
	return new Promise((resolve, reject) => {
		const t = setTimeout(() => {
			off();
			reject(new Error(`timed out after ${timeout} ms waiting for event ${event}`));
		}, timeout);
		const off = emitter.on(event, (...args) => {
			if (!pred(...args))
				return;
			clearTimeout(t);
			off();
			resolve(args[0]);
		});
	});
}

/* httpGet fetches a path of the chat port: {status, headers, body (Buffer)}. */
export function httpGet(path) {
	return new Promise((resolve, reject) => {
		const req = http.get(httpUrl(path), (res) => {
			const chunks = [];

			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks)}));
		});

		req.on('error', reject);
		req.setTimeout(5000, () => req.destroy(new Error('timeout')));
	});
}

export async function workerPids() {
	const out = await sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'chat worker' ORDER BY pid");

	return out ? out.split('\n').map(Number) : [];
}

/* waitReady waits for one chat worker and a 200 from /healthz. */
export async function waitReady(timeout = 30000) {
	await waitFor(async () => (await workerPids()).length === 1, {timeout, what: 'the chat worker'});
	await waitFor(async () => (await httpGet('/healthz')).status === 200, {timeout, what: '/healthz'});
}

/*
 * killWorker sends SIGTERM to the chat worker (it closes every connection
 * with 1001 and exits; the postmaster starts it again) and waits for the
 * new one.
 */
export async function killWorker() {
	const [old] = await workerPids();

	if (!old)
		throw new Error('no chat worker to kill');
	process.kill(old, 'SIGTERM');
	await waitFor(async () => {
		const p = await workerPids();

		return p.length === 1 && p[0] !== old;
	}, {timeout: 30000, what: 'a new chat worker'});
	await waitReady();
}

/* restartCluster restarts PostgreSQL itself (fast shutdown). */
export async function restartCluster() {
	await run('runuser', ['-u', 'postgres', '--', await bin('pg_ctl'), '-D', env.data,
		'-l', `${env.dir}/server.log`, '-w', '-t', '60', '-m', 'fast', 'restart']);
	await waitReady();
}
