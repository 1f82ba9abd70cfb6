/*
 * chat.js: the JavaScript client of the chat WebSocket protocol (v1).
 *
 * One ES module, no dependencies.  It runs in browsers and in Node.js 20
 * (pass `WebSocket` from the `ws` package, or set globalThis.WebSocket).
 * The worker serves this very file at /chat.js.
 *
 * What it does for you:
 * - keeps one connection open: reconnects with exponential backoff and
 *   jitter, detects a dead connection by missed heartbeats, refreshes the
 *   token before it expires when the token comes from a function;
 * - never loses a send: every send gets a UUID clientId and stays in an
 *   outbox until its ack; after a reconnect it is sent again with the same
 *   clientId (the server answers a repeat with the first message);
 * - never loses or repeats a received message: each channel has a
 *   position (the last seq seen with nothing missing below it); every
 *   connection resumes (?resume=1): the server holds live messages until
 *   the client's first sync has given those positions, so nothing comes
 *   twice on the wire; it pages through hasMore, and still merges by seq
 *   (a server without resume sends live frames at once), so "message"
 *   events come once per seq, in order;
 * - optional persistence of the outbox and positions (a Storage-like
 *   adapter: localStorage in browsers), saved on pagehide too, so a reload
 *   resumes from where the page was;
 * - per-channel state: messages ordered by seq, unread, online, typing.
 *
 * See docs/client.md for the API.
 */

const OPEN = 1;	/* WebSocket.OPEN */
const RETRYABLE = new Set(['rate_limited', 'internal']);
const REQUEST_TIMEOUT_MS = 15000;
const MAX_SYNC_CHANNELS = 1024;	/* channels in one sync frame (server limit) */
const PRESENCE_REFRESH_LIMIT = 20;

/* ------------------------------------------------------------------ */
/* small helpers                                                        */
/* ------------------------------------------------------------------ */

/* uuid returns a random (version 4) UUID, also outside secure contexts. */
export function uuid() {
	const c = globalThis.crypto;

	if (c && typeof c.randomUUID === 'function')
		return c.randomUUID();
	const b = new Uint8Array(16);

	if (c && typeof c.getRandomValues === 'function')
		c.getRandomValues(b);
	else
		for (let i = 0; i < 16; i++)
			b[i] = Math.floor(Math.random() * 256);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/* jwtClaims reads a token's payload without checking it (the server does). */
export function jwtClaims(token) {
	try {
		const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
		const bin = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
		const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));

		return JSON.parse(new TextDecoder().decode(bytes));
	} catch {
		return null;
	}
}

function utf8Length(s) {
	return new TextEncoder().encode(s).length;
}

/* ChatError is what failed requests and sends reject with. */
export class ChatError extends Error {
	constructor(code, message, frame) {
		super(message || code);
		this.name = 'ChatError';
		this.code = code;
		this.frame = frame || null;
	}
}

class Emitter {
	constructor() {
		this._handlers = new Map();
	}

	/* on adds a listener and returns a function that removes it. */
	on(event, fn) {
		if (!this._handlers.has(event))
			this._handlers.set(event, new Set());
		this._handlers.get(event).add(fn);
		return () => this.off(event, fn);
	}

	off(event, fn) {
		const set = this._handlers.get(event);

		if (set)
			set.delete(fn);
	}

	once(event, fn) {
		const off = this.on(event, (...args) => {
			off();
			fn(...args);
		});

		return off;
	}

	/* emit calls every listener; one that throws cannot break the client. */
	emit(event, ...args) {
		const set = this._handlers.get(event);

		if (!set)
			return;
		for (const fn of [...set]) {
			try {
				fn(...args);
			} catch (e) {
				setTimeout(() => {
					throw e;
				});
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* per-channel state                                                    */
/* ------------------------------------------------------------------ */

/*
 * Channel is the client's view of one channel.  lastSeq is the position:
 * every message up to it has been delivered (or existed before this client
 * first connected, for history() to fetch).  messages holds what the client
 * has, ordered by seq; it may hold messages above lastSeq while a sync
 * fills the gap below them.
 */
class Channel {
	constructor(client, id) {
		this._client = client;
		this.id = id;
		this.type = null;
		this.name = null;
		this.role = null;
		this.lastSeq = null;
		this.lastChange = null;
		this.lastReadSeq = 0;
		this.unread = 0;
		this.hasMoreHistory = true;
		this.syncing = false;
		this.readBy = {};		/* other members' read positions seen live */
		this._messages = [];	/* sorted by seq */
		this._bySeq = new Map();
		this._online = new Set();
		this._members = new Set();
		this._typing = new Map();	/* userId -> timer */
		this._countedThrough = 0;	/* unread counts messages above this */
		this._wantRead = 0;			/* a read not yet confirmed by the server */
	}

	/* messages, oldest first. */
	get messages() {
		return this._messages;
	}

	/* pending: this channel's sends still waiting for their ack. */
	get pending() {
		return this._client._outbox.filter((e) => e.channelId === this.id);
	}

	get online() {
		return [...this._online];
	}

	get typing() {
		return [...this._typing.keys()];
	}

	/* members: the users known to belong here (learned as they show up). */
	get members() {
		return [...this._members];
	}

	get oldestSeq() {
		return this._messages.length ? this._messages[0].seq : null;
	}

	get newestSeq() {
		return this._messages.length ? this._messages[this._messages.length - 1].seq : this.lastSeq || 0;
	}

	/* _setOnline keeps the other members online (never the user). */
	_setOnline(list) {
		const me = this._client.userId;

		this._online = new Set((list || []).filter((u) => u !== me));
		for (const u of this._online)
			this._members.add(u);
	}

	_applyInfo(info) {
		this.type = info.type;
		this.name = info.name ?? null;
		this.role = info.role ?? this.role;
		this.lastReadSeq = info.lastReadSeq ?? 0;
		this.unread = info.unread ?? 0;
		this._countedThrough = Math.max(this._countedThrough, info.lastSeq ?? 0);
		this._setOnline(info.online);
		if (this._client.userId)
			this._members.add(this._client.userId);
	}

	/*
	 * _put stores m by seq; returns true when the seq is new.  A repeat
	 * replaces the stored copy only when it carries a later edit or delete.
	 */
	_put(m) {
		const old = this._bySeq.get(m.seq);

		if (old) {
			if ((m.deletedAt && !old.deletedAt) || (m.editedAt && m.editedAt !== old.editedAt && !old.deletedAt))
				this._replace(m);
			return false;
		}
		this._bySeq.set(m.seq, m);
		const a = this._messages;
		let lo = 0, hi = a.length;

		if (hi === 0 || a[hi - 1].seq < m.seq)
			lo = hi;
		else
			while (lo < hi) {
				const mid = (lo + hi) >> 1;

				if (a[mid].seq < m.seq)
					lo = mid + 1;
				else
					hi = mid;
			}
		a.splice(lo, 0, m);
		return true;
	}

	_replace(m) {
		const old = this._bySeq.get(m.seq);

		if (!old)
			return null;
		this._bySeq.set(m.seq, m);
		const i = this._messages.indexOf(old);

		if (i >= 0)
			this._messages[i] = m;
		return old;
	}

	_byId(id) {
		for (let i = this._messages.length - 1; i >= 0; i--)
			if (this._messages[i].id === id)
				return this._messages[i];
		return null;
	}

	/* _countUnread lowers unread for messages now below lastReadSeq. */
	_readMoved(oldRead, newRead, me) {
		if (newRead >= this._countedThrough) {
			this.unread = 0;
			return;
		}
		let n = 0;

		for (const m of this._messages)
			if (m.seq > oldRead && m.seq <= newRead && m.senderId !== me && !m.deletedAt)
				n++;
		this.unread = Math.max(0, this.unread - n);
	}

	_snapshot() {
		return {
			id: this.id, type: this.type, name: this.name, role: this.role,
			lastSeq: this.lastSeq, lastChange: this.lastChange,
			lastReadSeq: this.lastReadSeq, unread: this.unread,
		};
	}
}

/* ------------------------------------------------------------------ */
/* the client                                                           */
/* ------------------------------------------------------------------ */

export class ChatClient extends Emitter {
	/*
	 * options: url (ws://host:port/ws), token (a string, or a function
	 * returning one or a promise of one), WebSocket, storage, storageKey,
	 * reconnect {minDelayMs, maxDelayMs, factor, jitter}, heartbeatMs,
	 * heartbeatTimeoutMs, connectTimeoutMs, autoConnect, resume.
	 */
	constructor(options = {}) {
		super();
		if (!options.url)
			throw new TypeError('ChatClient: options.url is required');
		if (options.token == null)
			throw new TypeError('ChatClient: options.token is required');
		this.url = options.url;
		this._tokenSource = options.token;
		this._WS = options.WebSocket || globalThis.WebSocket;
		if (!this._WS)
			throw new TypeError('ChatClient: no WebSocket here; pass options.WebSocket (the "ws" package in Node.js)');
		this._storage = options.storage || null;
		this._storageKey = options.storageKey || null;
		if (this._storage && !this._storageKey && typeof this._tokenSource === 'string')
			this._key(this._tokenSource);
		this._backoff = Object.assign({minDelayMs: 500, maxDelayMs: 30000, factor: 2, jitter: 0.5},
			options.reconnect || {});
		this._heartbeatOpt = options.heartbeatMs || null;
		this._heartbeatTimeoutOpt = options.heartbeatTimeoutMs || null;
		this._connectTimeoutMs = options.connectTimeoutMs || 10000;
		this._resume = options.resume !== false;
		/* the server's defaults (chat.rate_limit, chat.rate_burst), with a margin */
		this._rateOpt = options.rateLimit === undefined ? {} : options.rateLimit;
		this._rate = null;
		this._bucket = {tokens: 0, at: 0};
		this._hold = false;
		this._holdDelay = 0;

		this.state = 'idle';
		this.userId = null;
		this.connectionId = null;
		this.server = null;			/* the limits and timings from ready */
		this._channels = new Map();
		this._outbox = [];			/* {clientId, channelId, content, kind, replyTo, attachments, createdAt} */
		this._waiters = new Map();	/* clientId -> {resolve, reject} of send() */
		this._requests = new Map();	/* ref -> request */
		this._refSeq = 0;
		this._typingSent = new Map();
		this._ws = null;
		this._gen = 0;
		this._attempt = 0;
		this._closedByUser = false;
		this._timers = {};
		this._restored = null;
		this._savedUserId = null;
		this._token = null;
		this._presenceRefresh = new Set();

		if (typeof globalThis.addEventListener === 'function') {
			this._onOnline = () => {
				if (this.state === 'reconnecting' && this._timers.reconnect) {
					this._clearTimer('reconnect');
					this._open();
				}
			};
			globalThis.addEventListener('online', this._onOnline);
			/* a reload must find the positions the page had reached */
			this._onPageHide = () => this._saveNow();
			globalThis.addEventListener('pagehide', this._onPageHide);
		}
		if (options.autoConnect !== false)
			this.connect();
	}

	/* ---------------- public API ---------------- */

	get channels() {
		return [...this._channels.values()];
	}

	channel(id) {
		return this._channels.get(id) || null;
	}

	/* outbox: the sends not yet acknowledged, oldest first (copies). */
	get outbox() {
		return this._outbox.map((e) => ({...e}));
	}

	/* socket: the current WebSocket, or null (for diagnostics and tests). */
	get socket() {
		return this._ws;
	}

	connect() {
		if (this.state === 'connecting' || this.state === 'open' || this.state === 'reconnecting')
			return;
		this._closedByUser = false;
		this._setState('connecting');
		this._open();
	}

	/* close ends the connection for good (connect() starts again). */
	close() {
		this._closedByUser = true;
		this._gen++;
		for (const name of Object.keys(this._timers))
			this._clearTimer(name);
		const ws = this._ws;

		this._ws = null;
		if (ws) {
			this._detach(ws);
			try {
				ws.close(1000, 'bye');
			} catch {
				/* already closed */
			}
		}
		this._connectionLost();
		for (const [ref, r] of this._requests) {
			this._requests.delete(ref);
			clearTimeout(r.timer);
			r.reject(new ChatError('closed', 'the client was closed'));
		}
		if (this._onOnline && typeof globalThis.removeEventListener === 'function') {
			globalThis.removeEventListener('online', this._onOnline);
			globalThis.removeEventListener('pagehide', this._onPageHide);
		}
		this._saveNow();
		this._setState('closed');
	}

	/* setToken replaces the token (or token function) for the next connect. */
	setToken(token) {
		this._tokenSource = token;
	}

	/*
	 * send queues a message and returns a promise of the stored message
	 * (resolved on its ack).  It survives disconnects: the outbox resends it.
	 */
	send(channelId, content, opts = {}) {
		if (typeof content !== 'string' || content === '')
			return Promise.reject(new ChatError('bad_request', 'content must be a non-empty string'));
		if (this.server && utf8Length(content) > this.server.maxMessageBytes)
			return Promise.reject(new ChatError('too_large', `content is larger than ${this.server.maxMessageBytes} bytes`));
		const entry = {
			clientId: opts.clientId || uuid(),
			channelId,
			content,
			kind: opts.kind || 'text',
			replyTo: opts.replyTo || null,
			attachments: opts.attachments || null,
			createdAt: new Date().toISOString(),
		};
		const p = new Promise((resolve, reject) => this._waiters.set(entry.clientId, {resolve, reject}));

		this._outbox.push(entry);
		this._saveNow();
		this._typingSent.delete(channelId);
		this._pump();
		this._changed(channelId);
		return p;
	}

	/*
	 * history loads the page of messages older than the oldest one held
	 * (or before opts.before) and merges it; resolves {messages (oldest
	 * first), hasMore}.
	 */
	async history(channelId, opts = {}) {
		const ch = this._requireChannel(channelId);
		let before = opts.before;

		if (before == null)
			before = ch.oldestSeq ?? ((ch.lastSeq || 0) + 1);
		if (before <= 1) {
			ch.hasMoreHistory = false;
			return {messages: [], hasMore: false};
		}
		const limit = Math.min(opts.limit || 50, 200);
		const f = await this._request({type: 'history', channelId, before, limit});
		const msgs = (f.messages || []).slice().reverse();

		this._merge(ch, msgs);
		if (opts.before == null && (!f.hasMore || (msgs.length && msgs[0].seq <= 1)))
			ch.hasMoreHistory = false;
		this.emit('history', {channelId, messages: msgs, hasMore: !!f.hasMore});
		this._changed(channelId);
		return {messages: msgs, hasMore: !!f.hasMore};
	}

	/* markRead moves the read marker (default: the newest message held). */
	markRead(channelId, seq) {
		const ch = this._requireChannel(channelId);

		if (seq == null)
			seq = Math.max(ch.newestSeq, ch.lastSeq || 0);
		if (!(seq > ch.lastReadSeq))
			return false;
		ch._readMoved(ch.lastReadSeq, seq, this.userId);
		ch.lastReadSeq = seq;
		ch._wantRead = seq;
		if (this._isOpen())
			this._sendFrame({type: 'read', channelId, seq});
		this._saveSoon();
		this._changed(channelId);
		return true;
	}

	/*
	 * typing tells the others that the user is typing; call it on every
	 * keystroke: it sends at most once per server typingDebounceMs.
	 */
	typing(channelId) {
		if (!this._isOpen() || !this._channels.has(channelId))
			return false;
		const now = Date.now();
		const last = this._typingSent.get(channelId);

		if (last != null && now - last < this.server.typingDebounceMs)
			return false;
		if (!this._takeToken())
			return false;	/* sends first: a typing event can be dropped */
		this._typingSent.set(channelId, now);
		return this._sendFrame({type: 'typing', channelId});
	}

	/* edit changes the content of one of the user's messages. */
	edit(messageId, content) {
		return this._request({type: 'edit', messageId, content},
			(f) => f.type === 'message_updated' && f.message && f.message.id === messageId)
			.then((f) => f.message);
	}

	/* delete soft-deletes a message (the sender's, or any as an admin). */
	delete(messageId) {
		return this._request({type: 'delete', messageId},
			(f) => f.type === 'message_deleted' && f.messageId === messageId)
			.then(() => undefined);
	}

	/*
	 * react adds the user's reaction emoji to a message, or removes it with
	 * {remove: true}; resolves the message's reactions now
	 * ([{emoji, count, users}]).  Every member's client gets a reaction
	 * event.
	 */
	react(messageId, emoji, opts = {}) {
		return this._request({type: opts.remove ? 'unreact' : 'react', messageId, emoji},
			(f) => f.type === 'reaction' && f.messageId === messageId)
			.then((f) => f.reactions || []);
	}

	/* unreact removes the user's reaction emoji from a message. */
	unreact(messageId, emoji) {
		return this.react(messageId, emoji, {remove: true});
	}

	/*
	 * search finds messages of the user's channels (or of opts.channelId)
	 * matching query, newest first; page with opts.before (the messageId
	 * of the last result).  Resolves {results, hasMore}; each result has a
	 * headline: HTML with the text escaped and the matches in <mark>.
	 */
	async search(query, opts = {}) {
		const frame = {type: 'search', query};

		if (opts.channelId)
			frame.channelId = opts.channelId;
		if (opts.before)
			frame.before = opts.before;
		if (opts.limit)
			frame.limit = Math.min(opts.limit, 50);
		const f = await this._request(frame);

		return {results: f.results || [], hasMore: !!f.hasMore};
	}

	/* presence asks who of the channel is online now. */
	async presence(channelId) {
		const f = await this._request({type: 'presence', channelId});

		return f.online || [];
	}

	/* ---------------- connection ---------------- */

	_setState(state, info) {
		if (this.state === state)
			return;
		this.state = state;
		this.emit('state', state, info || {});
		this.emit(state, info || {});
	}

	_isOpen() {
		return this.state === 'open' && this._ws && this._ws.readyState === OPEN;
	}

	async _tokenNow() {
		const t = typeof this._tokenSource === 'function' ? await this._tokenSource() : this._tokenSource;

		if (typeof t !== 'string' || t === '')
			throw new ChatError('unauthorized', 'the token source gave no token');
		return t;
	}

	async _open() {
		const gen = ++this._gen;
		let token;

		try {
			token = await this._tokenNow();
			if (!this._restored)
				this._restored = this._restore(token);
			await this._restored;
		} catch (e) {
			if (gen !== this._gen || this._closedByUser)
				return;
			this.emit('error', e);
			this._scheduleReconnect();
			return;
		}
		if (gen !== this._gen || this._closedByUser)
			return;
		if (typeof this._tokenSource === 'string') {
			const c = jwtClaims(token);

			if (c && typeof c.exp === 'number' && c.exp * 1000 < Date.now() - 60000) {
				this._fail(new ChatError('token_expired', 'the token has expired; pass a token function or call setToken()'));
				return;
			}
		}
		const url = this.url + (this.url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) +
			(this._resume ? '&resume=1' : '');
		let ws;

		try {
			ws = new this._WS(url);
		} catch (e) {
			this.emit('error', e);
			this._scheduleReconnect();
			return;
		}
		this._ws = ws;
		this._token = token;
		this._ready = false;
		this._lastRx = Date.now();
		this._setTimer('connect', this._connectTimeoutMs, () => this._drop(ws, 4000, 'connect timeout'));
		ws.onmessage = (ev) => {
			if (ws !== this._ws)
				return;
			this._lastRx = Date.now();
			this._pingSentAt = 0;
			this._onFrame(ev.data);
		};
		ws.onclose = (ev) => this._drop(ws, ev.code, ev.reason);
		ws.onerror = () => {
			/* a close event follows */
		};
	}

	_detach(ws) {
		ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
		if (typeof ws.on === 'function')
			ws.on('error', () => {});	/* ws (Node) throws on an unheard error */
	}

	/* _drop handles the end of connection ws, whoever ended it. */
	_drop(ws, code, reason) {
		if (ws !== this._ws)
			return;
		this._ws = null;
		this._detach(ws);
		if (ws.readyState !== 3) {
			try {
				if (typeof ws.terminate === 'function')
					ws.terminate();
				else
					ws.close(4000, 'dead');
			} catch {
				/* closed already */
			}
		}
		const wasReady = this._ready;

		this._ready = false;
		this._clearTimer('connect');
		this._clearTimer('heartbeat');
		this._clearTimer('refresh');
		this._connectionLost();
		if (this._closedByUser)
			return;
		this.emit('disconnect', {code, reason, wasReady});
		if (code === 4001 && typeof this._tokenSource === 'string') {
			this._fail(new ChatError('token_expired', 'the token expired on a live connection'));
			return;
		}
		this._scheduleReconnect();
	}

	_fail(err) {
		this._closedByUser = true;
		this.emit('error', err);
		this._setState('closed', {error: err});
	}

	_scheduleReconnect() {
		const b = this._backoff;
		const base = Math.min(b.maxDelayMs, b.minDelayMs * Math.pow(b.factor, this._attempt));
		const delay = Math.round(base * (1 - b.jitter * Math.random()));

		this._attempt++;
		this._setState('reconnecting', {attempt: this._attempt, delayMs: delay});
		this.emit('retry', {attempt: this._attempt, delayMs: delay});
		this._setTimer('reconnect', delay, () => this._open());
	}

	/* _connectionLost forgets what only a live connection knows. */
	_connectionLost() {
		for (const [ref, r] of this._requests) {
			if (r.sent && !r.retry) {
				this._requests.delete(ref);
				clearTimeout(r.timer);
				r.reject(new ChatError('disconnected', 'the connection closed'));
			} else {
				r.sent = false;
			}
		}
		for (const ch of this._channels.values()) {
			ch.syncing = false;
			for (const [user, t] of ch._typing) {
				clearTimeout(t);
				ch._typing.delete(user);
				this.emit('typing_stopped', {channelId: ch.id, userId: user});
			}
		}
		this._typingSent.clear();
		for (const e of this._outbox)
			e.inFlight = false;
		this._clearTimer('pump');
	}

	_setTimer(name, ms, fn) {
		this._clearTimer(name);
		this._timers[name] = setTimeout(() => {
			delete this._timers[name];
			fn();
		}, ms);
	}

	_clearTimer(name) {
		if (this._timers[name]) {
			clearTimeout(this._timers[name]);
			delete this._timers[name];
		}
	}

	/*
	 * _heartbeat: the server pings every heartbeatMs, but a browser never
	 * sees pings, so the client asks with {"type":"ping"} after heartbeatMs
	 * of silence, and gives up on the connection when nothing at all came
	 * back within heartbeatTimeoutMs of that.
	 */
	_heartbeat() {
		const ws = this._ws;

		if (!ws)
			return;
		const now = Date.now();
		const every = this._heartbeatOpt || this.server.heartbeatMs;
		const timeout = this._heartbeatTimeoutOpt || every;

		if (this._pingSentAt && now - this._pingSentAt >= timeout) {
			this._drop(ws, 4000, 'heartbeat missed');
			return;
		}
		if (!this._pingSentAt && now - this._lastRx >= every) {
			this._pingSentAt = now;
			this._sendFrame({type: 'ping'});
		}
		this._setTimer('heartbeat', Math.max(50, Math.min(every, timeout) / 4), () => this._heartbeat());
	}

	/* _scheduleRefresh renews a function-made token before it expires. */
	_scheduleRefresh() {
		if (typeof this._tokenSource !== 'function')
			return;
		const c = jwtClaims(this._token);

		if (!c || typeof c.exp !== 'number')
			return;
		const left = c.exp * 1000 - Date.now();
		const at = left > 120000 ? left - 60000 : left / 2;

		this._setTimer('refresh', Math.max(1000, at), async () => {
			try {
				const token = await this._tokenNow();

				await this._request({type: 'refresh', token});
				this._token = token;
			} catch (e) {
				this.emit('error', e);
			}
			if (this._isOpen())
				this._scheduleRefresh();
		});
	}

	_sendFrame(obj) {
		const ws = this._ws;

		if (!ws || ws.readyState !== OPEN)
			return false;
		try {
			ws.send(JSON.stringify(obj));
			return true;
		} catch {
			return false;
		}
	}

	/*
	 * _pacing: the rate to send at, a little under the server's limit (its
	 * ready may announce rateLimit/rateBurst; else the defaults 30/s, 100),
	 * or null for no pacing (options.rateLimit false, or no server limit).
	 */
	_pacing(ready) {
		const o = this._rateOpt;

		if (o === false || ready.rateLimit === 0)
			return null;
		return {
			perSecond: o.perSecond ?? (ready.rateLimit ?? 30) * 0.9,
			burst: o.burst ?? Math.max(1, Math.floor((ready.rateBurst ?? 100) * 0.8)),
		};
	}

	/*
	 * _takeToken spends one token of the client's copy of the server's
	 * rate limit (sends and typing per connection), so that a burst of
	 * sends is paced instead of refused.
	 */
	_takeToken() {
		const r = this._rate;

		if (!r)
			return true;
		const now = Date.now();
		const b = this._bucket;

		b.tokens = Math.min(r.burst, b.tokens + ((now - b.at) / 1000) * r.perSecond);
		b.at = now;
		if (b.tokens < 1)
			return false;
		b.tokens -= 1;
		return true;
	}

	/*
	 * _pump sends the outbox in order: each entry not yet on this
	 * connection, as tokens allow.  After a refusal (rate_limited,
	 * internal) it holds until every send on the wire is answered, then
	 * sends the refused ones again first, so the order is kept.
	 */
	_pump() {
		if (!this._isOpen() || this._timers.pump)
			return;
		if (this._hold) {
			if (this._outbox.some((e) => e.inFlight))
				return;		/* wait for the answers on the wire */
			this._hold = false;
			this._setTimer('pump', this._holdDelay || 100, () => this._pump());
			return;
		}
		for (const e of this._outbox) {
			if (e.inFlight)
				continue;
			if (!this._takeToken()) {
				const wait = Math.ceil(1000 * (1 - this._bucket.tokens) / this._rate.perSecond);

				this._setTimer('pump', Math.max(5, wait), () => this._pump());
				return;
			}
			e.inFlight = this._sendEntry(e);
			if (!e.inFlight)
				return;
		}
	}

	_sendEntry(e) {
		const f = {type: 'send', clientId: e.clientId, channelId: e.channelId, content: e.content};

		if (e.kind && e.kind !== 'text')
			f.kind = e.kind;
		if (e.replyTo)
			f.replyTo = e.replyTo;
		if (e.attachments)
			f.attachments = e.attachments;
		return this._sendFrame(f);
	}

	/*
	 * _request sends a frame with a ref and resolves with the reply that
	 * carries the ref (or that match() accepts).  Asked while disconnected,
	 * it waits for the connection; idempotent requests are sent again after
	 * a reconnect.  It rejects on an error frame or after 15 s.
	 */
	_request(frame, match) {
		return new Promise((resolve, reject) => {
			const ref = 'r' + (++this._refSeq);
			const r = {
				frame: {...frame, ref}, match, resolve, reject, sent: false,
				/* changes are not resent blindly; reads and react (idempotent) are */
				retry: frame.type !== 'edit' && frame.type !== 'delete' && frame.type !== 'unreact',
			};

			r.timer = setTimeout(() => {
				this._requests.delete(ref);
				reject(new ChatError('timeout', `no answer to ${frame.type}`));
			}, REQUEST_TIMEOUT_MS);
			this._requests.set(ref, r);
			if (this._isOpen())
				r.sent = this._sendFrame(r.frame);
		});
	}

	_settleRequest(f) {
		for (const [ref, r] of this._requests) {
			if (f.ref === ref || (r.match && r.sent && f.type !== 'error' && r.match(f))) {
				this._requests.delete(ref);
				clearTimeout(r.timer);
				if (f.type === 'error')
					r.reject(new ChatError(f.code, f.message, f));
				else
					r.resolve(f);
				return true;
			}
		}
		return false;
	}

	_requireChannel(id) {
		const ch = this._channels.get(id);

		if (!ch)
			throw new ChatError('not_member', `not a member of channel ${id}`);
		return ch;
	}

	/* ---------------- frames ---------------- */

	_onFrame(data) {
		let f;

		try {
			f = JSON.parse(typeof data === 'string' ? data : String(data));
		} catch {
			this.emit('error', new ChatError('bad_frame', 'the server sent a frame that is not JSON'));
			return;
		}
		const h = FRAME_HANDLERS[f.type];

		if (this._requests.size && f.type !== 'error' && f.type !== 'synced')
			this._settleRequest(f);
		if (h)
			h.call(this, f);
		this.emit('frame', f);
	}

	_onReady(f) {
		this._clearTimer('connect');
		if (this.userId && f.userId !== this.userId) {
			/* the token source switched users: forget the other's state */
			for (const e of this._outbox)
				this._rejectWaiter(e.clientId, new ChatError('forbidden', 'the token is for another user'));
			this._outbox = [];
			this._channels.clear();
		} else if (this._savedUserId && f.userId !== this._savedUserId) {
			/* stored state of another user: never send their outbox as this one */
			this._outbox = this._outbox.filter((e) => !e.restored);
			this._channels.clear();
		}
		this._savedUserId = null;
		this.userId = f.userId;
		this.connectionId = f.connectionId;
		this.server = {
			heartbeatMs: f.heartbeatMs, typingTimeoutMs: f.typingTimeoutMs,
			typingDebounceMs: f.typingDebounceMs, maxMessageBytes: f.maxMessageBytes,
		};
		this._ready = true;
		this._attempt = 0;
		this._rate = this._pacing(f);

		const listed = new Set();
		const positions = {};
		const changes = {};

		for (const info of f.channels || []) {
			listed.add(info.id);
			const ch = this._upsertChannel(info);

			if (ch.lastSeq == null || ch.lastSeq > info.lastSeq) {
				this._resetChannel(ch, info);
				continue;
			}
			if (ch.lastSeq < info.lastSeq || (ch.lastChange != null && ch.lastChange < (info.lastChange || 0))) {
				positions[ch.id] = ch.lastSeq;
				if (ch.lastChange != null)
					changes[ch.id] = ch.lastChange;
				ch.syncing = true;
			}
		}
		for (const ch of [...this._channels.values()])
			if (!listed.has(ch.id))
				this._removeChannel(ch.id);

		this._setState('open');
		/*
		 * With resume the server sends no live message of these channels
		 * before our first sync: it must go out even when no channel is
		 * behind, and it releases the channels it does not name at ready's
		 * lastSeq (where this client now stands in them).
		 */
		this._sync(positions, changes, f.resume === true);
		for (const ch of this._channels.values())
			if (ch._wantRead > ch.lastReadSeq)
				this._sendFrame({type: 'read', channelId: ch.id, seq: ch._wantRead});
			else
				ch._wantRead = 0;
		this._bucket = {tokens: this._rate ? this._rate.burst : 0, at: Date.now()};
		this._hold = false;
		this._pump();
		for (const r of this._requests.values())
			if (!r.sent)
				r.sent = this._sendFrame(r.frame);
		this._pingSentAt = 0;
		this._heartbeat();
		this._scheduleRefresh();
		this._saveSoon();
		this.emit('ready', f);
		this._changed(null);
	}

	_sync(positions, changes, always = false) {
		const ids = Object.keys(positions);

		if (always && ids.length === 0)
			this._sendFrame({type: 'sync', channels: {}});
		for (let i = 0; i < ids.length; i += MAX_SYNC_CHANNELS) {
			const frame = {type: 'sync', channels: {}};
			const ch = {};

			for (const id of ids.slice(i, i + MAX_SYNC_CHANNELS)) {
				frame.channels[id] = positions[id];
				if (changes[id] != null)
					ch[id] = changes[id];
			}
			if (Object.keys(ch).length)
				frame.changes = ch;
			this._sendFrame(frame);
		}
	}

	_syncOne(ch) {
		ch.syncing = true;
		const changes = {};

		if (ch.lastChange != null)
			changes[ch.id] = ch.lastChange;
		this._sync({[ch.id]: ch.lastSeq}, changes);
	}

	_upsertChannel(info) {
		let ch = this._channels.get(info.id);

		if (!ch) {
			ch = new Channel(this, info.id);
			this._channels.set(info.id, ch);
		}
		ch._applyInfo(info);
		return ch;
	}

	/* _resetChannel starts a channel at the server's head (first sight). */
	_resetChannel(ch, info) {
		if (ch.lastSeq != null && ch.lastSeq > info.lastSeq) {
			ch._messages = [];
			ch._bySeq.clear();
			ch._countedThrough = info.lastSeq;
		}
		ch.lastSeq = info.lastSeq;
		ch.lastChange = info.lastChange ?? 0;
		ch.hasMoreHistory = info.lastSeq > 0;
	}

	_removeChannel(id) {
		const ch = this._channels.get(id);

		if (!ch)
			return;
		for (const t of ch._typing.values())
			clearTimeout(t);
		this._channels.delete(id);
		for (const e of this._outbox.filter((x) => x.channelId === id))
			this._settleEntry(e.clientId, null, new ChatError('not_member', 'left the channel'));
		this.emit('left', {channelId: id});
		this._saveSoon();
		this._changed(id);
	}

	/*
	 * _merge stores messages and advances the position over every seq now
	 * held without a gap, emitting "message" once per seq, in order.  A
	 * message beyond a gap waits for the sync that fills it.
	 */
	_merge(ch, msgs) {
		for (const m of msgs) {
			if (!m || typeof m.seq !== 'number')
				continue;
			if (m.senderId)
				ch._members.add(m.senderId);
			ch._put(m);
		}
		const before = ch.lastSeq ?? 0;

		while (ch._bySeq.has(ch.lastSeq + 1))
			ch.lastSeq++;
		for (let s = before + 1; s <= ch.lastSeq; s++) {
			const m = ch._bySeq.get(s);

			if (s > ch._countedThrough) {
				ch._countedThrough = s;
				if (m.senderId !== this.userId && s > ch.lastReadSeq && !m.deletedAt)
					ch.unread++;
			}
			if (ch._typing.has(m.senderId))
				this._typingStopped(ch, m.senderId);
			this.emit('message', m);
		}
		if (ch.lastSeq > before)
			this._saveSoon();
		if (!ch.syncing && this._isOpen() && ch.newestSeq > ch.lastSeq)
			this._syncOne(ch);
	}

	_onMessage(f) {
		const m = f.message;
		const ch = m && this._channels.get(m.channelId);

		if (!ch)
			return;
		if (m.senderId === this.userId && m.clientId)
			this._settleEntry(m.clientId, m, null);
		this._merge(ch, [m]);
		this._changed(ch.id);
	}

	_onAck(f) {
		const ch = this._channels.get(f.channelId);
		const e = this._outbox.find((x) => x.clientId === f.clientId);
		let m = null;

		if (ch && ch._bySeq.has(f.seq))
			m = ch._bySeq.get(f.seq);
		else if (e)
			m = {
				id: f.serverId, channelId: f.channelId, seq: f.seq, senderId: this.userId,
				clientId: f.clientId, content: e.content, kind: e.kind || 'text',
				replyTo: e.replyTo || null, attachments: e.attachments || null,
				createdAt: f.createdAt, editedAt: null, deletedAt: null,
			};
		if (e)
			this._settleEntry(f.clientId, m, null, !!f.duplicate);
		if (ch) {
			if (m)
				this._merge(ch, [m]);
			else if (f.seq > ch.lastSeq && !ch.syncing)
				this._syncOne(ch);	/* a send of another tab of this client: fetch it */
			this._changed(ch.id);
		}
	}

	/* _settleEntry takes a send out of the outbox, resolving or failing it. */
	_settleEntry(clientId, message, error, duplicate = false) {
		const i = this._outbox.findIndex((x) => x.clientId === clientId);

		if (i < 0)
			return;
		const [e] = this._outbox.splice(i, 1);

		if (!error)
			this._holdDelay = 0;
		if (this._hold)
			this._pump();

		this._saveNow();
		const w = this._waiters.get(clientId);

		this._waiters.delete(clientId);
		if (error) {
			if (w)
				w.reject(error);
			this.emit('send_failed', {entry: e, error});
		} else {
			if (w)
				w.resolve(message);
			this.emit('ack', {clientId, message, duplicate});
		}
	}

	_rejectWaiter(clientId, err) {
		const w = this._waiters.get(clientId);

		this._waiters.delete(clientId);
		if (w)
			w.reject(err);
	}

	_onSynced(f) {
		const ch = this._channels.get(f.channelId);

		if (!ch)
			return;
		if (typeof f.lastChange === 'number')
			ch.lastChange = f.lastChange;
		if (f.hasMore) {
			/* the server holds live delivery until we have paged to the head */
			this._syncOne(ch);
			return;
		}
		ch.syncing = false;
		this._saveSoon();
		this.emit('synced', {channelId: ch.id, lastSeq: ch.lastSeq});
		if (this._isOpen() && ch.newestSeq > ch.lastSeq)
			this._syncOne(ch);
		this._changed(ch.id);
	}

	_onError(f) {
		const err = new ChatError(f.code, f.message, f);

		if (f.ref !== undefined && this._settleRequest(f))
			return;
		if (f.clientId && this._outbox.some((x) => x.clientId === f.clientId)) {
			const e = this._outbox.find((x) => x.clientId === f.clientId);

			if (RETRYABLE.has(f.code)) {
				/* refused, not stored: send it again, still in order */
				e.inFlight = false;
				this._hold = true;
				this._bucket.tokens = 0;
				this._holdDelay = Math.min(5000, (this._holdDelay || 100) * 2);
				this._pump();
			} else {
				this._settleEntry(f.clientId, null, err);
				this._changed(e.channelId);
			}
			return;
		}
		this.emit('error', err);
	}

	_onTyping(f) {
		const ch = this._channels.get(f.channelId);

		if (!ch || f.userId === this.userId)
			return;
		ch._members.add(f.userId);
		clearTimeout(ch._typing.get(f.userId));
		/* a safety net only: the server says typing_stopped itself */
		const ms = (f.expiresInMs || this.server.typingTimeoutMs) + this.server.typingDebounceMs;

		ch._typing.set(f.userId, setTimeout(() => this._typingStopped(ch, f.userId), ms));
		this.emit('typing', {channelId: ch.id, userId: f.userId, expiresInMs: f.expiresInMs});
		this._changed(ch.id);
	}

	_typingStopped(ch, userId) {
		if (!ch._typing.has(userId))
			return;
		clearTimeout(ch._typing.get(userId));
		ch._typing.delete(userId);
		this.emit('typing_stopped', {channelId: ch.id, userId});
		this._changed(ch.id);
	}

	_onTypingStopped(f) {
		const ch = this._channels.get(f.channelId);

		if (ch)
			this._typingStopped(ch, f.userId);
	}

	_onPresence(f) {
		const unknown = [];

		if (f.userId === this.userId)
			return;	/* this user's own devices */

		for (const ch of this._channels.values()) {
			if (f.status === 'offline') {
				if (ch._online.delete(f.userId))
					this._changed(ch.id);
			} else if (ch._members.has(f.userId)) {
				ch._online.add(f.userId);
				this._changed(ch.id);
			} else {
				unknown.push(ch.id);
			}
		}
		/* who else is in those channels is not known here: ask the server */
		if (f.status === 'online' && unknown.length && unknown.length <= PRESENCE_REFRESH_LIMIT) {
			for (const id of unknown)
				this._presenceRefresh.add(id);
			if (!this._timers.presence)
				this._setTimer('presence', 100, () => {
					const ids = [...this._presenceRefresh];

					this._presenceRefresh.clear();
					for (const id of ids)
						if (this._channels.has(id))
							this._sendFrame({type: 'presence', channelId: id});
				});
		}
		this.emit('presence', {userId: f.userId, status: f.status});
	}

	_onPresenceState(f) {
		const ch = this._channels.get(f.channelId);

		if (!ch)
			return;
		ch._setOnline(f.online);
		this._changed(ch.id);
	}

	_onRead(f) {
		const ch = this._channels.get(f.channelId);

		if (!ch)
			return;
		if (f.userId === this.userId) {
			if (f.seq > ch.lastReadSeq) {
				ch._readMoved(ch.lastReadSeq, f.seq, this.userId);
				ch.lastReadSeq = f.seq;
			}
			if (f.seq >= ch._wantRead)
				ch._wantRead = 0;
		} else {
			ch._members.add(f.userId);
			ch.readBy[f.userId] = Math.max(ch.readBy[f.userId] || 0, f.seq);
		}
		this.emit('read', {channelId: ch.id, userId: f.userId, seq: f.seq});
		this._changed(ch.id);
	}

	_onUpdated(f) {
		const m = f.message;
		const ch = m && this._channels.get(m.channelId);

		if (!ch)
			return;
		if (ch._bySeq.has(m.seq))
			ch._replace(m);
		this.emit('message_updated', m);
		this._changed(ch.id);
	}

	/*
	 * _onReaction applies a message's new reactions; the change counter is
	 * not moved here (a sync's lastChange catches up on anything missed).
	 */
	_onReaction(f) {
		const ch = this._channels.get(f.channelId);

		if (!ch)
			return;
		const old = ch._bySeq.get(f.seq);

		if (old && old.id === f.messageId) {
			const m = {...old};

			if (f.reactions && f.reactions.length)
				m.reactions = f.reactions;
			else
				delete m.reactions;
			ch._replace(m);
		}
		this.emit('reaction', {channelId: f.channelId, messageId: f.messageId, seq: f.seq,
			reactions: f.reactions || []});
		this._changed(ch.id);
	}

	_onDeleted(f) {
		const ch = this._channels.get(f.channelId);

		if (!ch)
			return;
		const old = ch._bySeq.get(f.seq);

		if (old && !old.deletedAt) {
			ch._replace({...old, content: '', deletedAt: new Date().toISOString()});
			if (old.senderId !== this.userId && f.seq > ch.lastReadSeq && f.seq <= ch._countedThrough)
				ch.unread = Math.max(0, ch.unread - 1);
		}
		this.emit('message_deleted', {channelId: f.channelId, messageId: f.messageId, seq: f.seq});
		this._changed(ch.id);
	}

	_onJoined(f) {
		const info = f.channel;
		const ch = this._upsertChannel(info);

		if (ch.lastSeq == null)
			this._resetChannel(ch, info);
		this.emit('joined', ch);
		this._saveSoon();
		this._changed(ch.id);
	}

	_onLeft(f) {
		this._removeChannel(f.channelId);
	}

	_changed(channelId) {
		this.emit('change', {channelId});
	}

	/* ---------------- persistence ---------------- */

	/*
	 * The storage adapter is anything with getItem/setItem (sync or async),
	 * such as localStorage.  One key per user: storageKey, or "chat:<sub>".
	 */
	_key(token) {
		if (!this._storageKey) {
			const c = jwtClaims(token);

			this._storageKey = 'chat:' + (c && c.sub != null ? c.sub : 'default');
		}
		return this._storageKey;
	}

	async _restore(token) {
		if (!this._storage)
			return;
		const key = this._key(token);
		let saved = null;

		try {
			const raw = await this._storage.getItem(key);

			saved = raw ? JSON.parse(raw) : null;
		} catch (e) {
			this.emit('error', e);
		}
		if (!saved || saved.v !== 1)
			return;
		this._savedUserId = saved.userId || null;
		for (const s of saved.channels || []) {
			if (this._channels.has(s.id))
				continue;
			const ch = new Channel(this, s.id);

			Object.assign(ch, {
				type: s.type, name: s.name, role: s.role, lastSeq: s.lastSeq,
				lastChange: s.lastChange ?? null, lastReadSeq: s.lastReadSeq || 0, unread: s.unread || 0,
			});
			ch._countedThrough = s.lastSeq || 0;
			this._channels.set(s.id, ch);
		}
		const have = new Set(this._outbox.map((e) => e.clientId));
		const restored = (saved.outbox || []).filter((e) => e && e.clientId && !have.has(e.clientId))
			.map((e) => ({...e, restored: true}));

		this._outbox = restored.concat(this._outbox);
		this._changed(null);
	}

	_saveSoon() {
		if (this._storage && !this._timers.save)
			this._setTimer('save', 200, () => this._saveNow());
	}

	_saveNow() {
		if (!this._storage)
			return;
		if (!this._storageKey) {
			/* the key comes with the first token: save once it is known */
			if (this._restored)
				this._restored.then(() => this._saveNow());
			return;
		}
		this._clearTimer('save');
		const state = {
			v: 1,
			userId: this.userId || this._savedUserId,
			channels: [...this._channels.values()].filter((c) => c.lastSeq != null).map((c) => c._snapshot()),
			outbox: this._outbox,
		};

		try {
			const r = this._storage.setItem(this._storageKey, JSON.stringify(state));

			if (r && typeof r.catch === 'function')
				r.catch((e) => this.emit('error', e));
		} catch (e) {
			this.emit('error', e);
		}
	}
}

const FRAME_HANDLERS = {
	ready: ChatClient.prototype._onReady,
	message: ChatClient.prototype._onMessage,
	ack: ChatClient.prototype._onAck,
	synced: ChatClient.prototype._onSynced,
	error: ChatClient.prototype._onError,
	typing: ChatClient.prototype._onTyping,
	typing_stopped: ChatClient.prototype._onTypingStopped,
	presence: ChatClient.prototype._onPresence,
	presence_state: ChatClient.prototype._onPresenceState,
	read: ChatClient.prototype._onRead,
	message_updated: ChatClient.prototype._onUpdated,
	message_deleted: ChatClient.prototype._onDeleted,
	reaction: ChatClient.prototype._onReaction,
	joined: ChatClient.prototype._onJoined,
	left: ChatClient.prototype._onLeft,
};

/* connect is a shorthand for new ChatClient(options). */
export function connect(options) {
	return new ChatClient(options);
}

export default ChatClient;
