/*
 * app.js: the demo page.  Everything it knows comes from the JS client
 * (/chat.js): channels with unread counts, messages, typing, presence,
 * read receipts, reactions, search and the connection state.  The token comes from the page's
 * address (?token=...), as printed by `make demo`.
 */
import {ChatClient, jwtClaims} from '/chat.js';

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get('token');

if (!token) {
	$('no-token').hidden = false;
	throw new Error('no token in the page address');
}

const me = (jwtClaims(token) || {}).sub || 'me';
const client = new ChatClient({
	url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
	token,
	storage: browserStorage(),
	storageKey: `chat:${me}`,
});
const wanted = decodeURIComponent(location.hash.slice(1)) || null;	/* #channel-id */
let current = null;
let loadingHistory = false;
let renderQueued = false;
let previewsLoaded = false;

window.chat = client;	/* for the curious (and the browser tests) */

function browserStorage() {
	try {
		const s = globalThis.localStorage;

		s.getItem('chat:probe');
		return s;
	} catch {
		return null;	/* storage disabled: the outbox lives in memory */
	}
}

/* ---------------- names and small helpers ---------------- */

const display = (user) => String(user).replace(/^./, (c) => c.toUpperCase());

function otherMember(ch) {
	return ch.members.find((u) => u !== me) || ch.online[0] || null;
}

function title(ch) {
	if (ch.type === 'direct') {
		const other = otherMember(ch);

		return other ? display(other) : 'Direct message';
	}
	return ch.name ? `# ${ch.name}` : '# group';
}

function lastMessage(ch) {
	const m = ch.messages;

	return m.length ? m[m.length - 1] : null;
}

function preview(ch) {
	const p = ch.pending;
	const m = p.length ? {senderId: me, content: p[p.length - 1].content} : lastMessage(ch);

	if (!m)
		return '';
	const text = m.deletedAt ? 'message deleted' : m.content;

	if (m.senderId === me)
		return `You: ${text}`;
	return ch.type === 'group' ? `${display(m.senderId)}: ${text}` : text;
}

function time(iso) {
	const d = iso ? new Date(iso) : new Date();

	return d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
}

function el(tag, cls, text) {
	const e = document.createElement(tag);

	if (cls)
		e.className = cls;
	if (text != null)
		e.textContent = text;
	return e;
}

function sortedChannels() {
	return client.channels.slice().sort((a, b) =>
		(a.type === b.type ? 0 : a.type === 'group' ? -1 : 1) || title(a).localeCompare(title(b)));
}

/* ---------------- rendering ---------------- */

function schedule() {
	if (renderQueued)
		return;
	renderQueued = true;
	requestAnimationFrame(() => {
		renderQueued = false;
		render();
	});
}

function render() {
	if (!current || !client.channel(current)) {
		const first = sortedChannels()[0];

		current = wanted && client.channel(wanted) ? wanted : first ? first.id : null;
	}
	renderStatus();
	renderChannels();
	renderConversation();
}

function renderStatus() {
	const s = $('status');
	const b = $('banner');
	const waiting = client.outbox.length;
	const queued = waiting ? ` ${waiting} message${waiting > 1 ? 's' : ''} will be sent when it is back.` : '';

	s.dataset.state = client.state;
	s.textContent = client.state;
	$('me').textContent = `signed in as ${display(me)}`;
	b.className = 'banner';
	if (client.state === 'closed') {
		b.classList.add('closed');
		b.textContent = 'Session ended (the token expired?). Open a fresh URL from make demo.';
	} else if (!navigator.onLine) {
		b.classList.add('offline');
		b.textContent = `You are offline.${queued}`;
	} else if (client.state === 'reconnecting') {
		b.textContent = `Connection lost, reconnecting…${queued}`;
	} else {
		b.textContent = '';
	}
	b.dataset.kind = client.state === 'closed' ? 'closed' : !navigator.onLine ? 'offline' :
		client.state === 'reconnecting' ? 'reconnecting' : '';
	b.hidden = b.textContent === '';
	const unread = client.channels.reduce((n, c) => n + c.unread, 0);

	document.title = unread ? `(${unread}) chat` : 'chat';
}

function renderChannels() {
	const ul = $('channels');

	ul.replaceChildren(...sortedChannels().map((ch) => {
		const li = el('li', ch.id === current ? 'active' : '');
		const dot = el('span', 'dot');
		const online = isOnline(ch);

		li.dataset.channelId = ch.id;
		if (online)
			dot.classList.add('online');
		dot.title = online ? 'online' : 'offline';
		li.append(dot, el('span', 'name', title(ch)));
		li.append(ch.unread > 0 && ch.id !== current ? el('span', 'badge', String(ch.unread)) : el('span'));
		li.append(el('span', 'preview', preview(ch)));
		li.onclick = () => select(ch.id);
		return li;
	}));
}

/* isOnline: someone else is there (unknown while disconnected). */
function isOnline(ch) {
	if (client.state !== 'open')
		return false;
	return ch.type === 'direct' ? ch.online.includes(otherMember(ch)) : ch.online.length > 0;
}

function readByOthers(ch, seq) {
	return Object.entries(ch.readBy).some(([u, s]) => u !== me && s >= seq);
}

function messageItem(ch, m, prev) {
	const own = m.senderId === me;
	const li = el('li', 'msg');

	if (own)
		li.classList.add('own');
	if (m.deletedAt)
		li.classList.add('deleted');
	li.dataset.seq = m.seq;
	li.dataset.clientId = m.clientId || '';
	if (!own && ch.type === 'group' && (!prev || prev.senderId !== m.senderId))
		li.append(el('div', 'who', display(m.senderId)));
	li.append(el('div', 'bubble', m.deletedAt ? 'message deleted' : m.content));
	const meta = el('div', 'meta');

	meta.append(el('span', '', time(m.createdAt)));
	if (m.editedAt && !m.deletedAt)
		meta.append(el('span', '', 'edited'));
	if (own) {
		const read = readByOthers(ch, m.seq);
		const tick = el('span', read ? 'tick read' : 'tick', read ? '✓✓' : '✓');

		tick.title = read ? 'read' : 'sent';
		meta.append(tick);
	}
	li.append(meta);
	if (!m.deletedAt)
		li.append(reactionsRow(m));
	return li;
}

/* The quick reactions of the picker. */
const EMOJI = ['👍', '✅', '❤️', '😂', '🚚'];
let picking = null;	/* the message id whose picker is open */

/*
 * reactionsRow shows a message's reactions (the user's own highlighted;
 * a click toggles it) and a button that opens the picker.
 */
function reactionsRow(m) {
	const row = el('div', 'reactions');

	for (const r of m.reactions || []) {
		const mine = r.users.includes(me);
		const b = el('button', mine ? 'reaction mine' : 'reaction', `${r.emoji} ${r.count}`);

		b.type = 'button';
		b.dataset.emoji = r.emoji;
		b.title = r.users.map(display).join(', ');
		b.addEventListener('click', () => react(m.id, r.emoji, mine));
		row.append(b);
	}
	const add = el('button', 'react-add', '☺+');

	add.type = 'button';
	add.title = 'react';
	add.addEventListener('click', () => {
		picking = picking === m.id ? null : m.id;
		schedule();
	});
	row.append(add);
	if (picking === m.id) {
		const pick = el('span', 'react-pick');

		for (const e of EMOJI) {
			const b = el('button', 'react-choice', e);

			b.type = 'button';
			b.dataset.emoji = e;
			b.addEventListener('click', () => {
				picking = null;
				const r = (m.reactions || []).find((x) => x.emoji === e);

				react(m.id, e, !!(r && r.users.includes(me)));
			});
			pick.append(b);
		}
		row.append(pick);
	}
	return row;
}

function react(messageId, emoji, remove) {
	client.react(messageId, emoji, {remove}).catch((e) => {
		$('banner').hidden = false;
		$('banner').textContent = `Reaction failed: ${e.message}`;
	});
	schedule();
}

function pendingItem(e) {
	const li = el('li', 'msg own pending');

	li.dataset.clientId = e.clientId;
	li.append(el('div', 'bubble', e.content));
	const meta = el('div', 'meta');
	const tick = el('span', 'sending', 'sending…');

	meta.append(el('span', '', time(e.createdAt)), tick);
	li.append(meta);
	return li;
}

function typingLine(ch) {
	const who = ch.typing.map(display);

	if (who.length === 0)
		return '';
	if (who.length === 1)
		return `${who[0]} is typing…`;
	if (who.length === 2)
		return `${who[0]} and ${who[1]} are typing…`;
	return 'Several people are typing…';
}

function renderConversation() {
	const ch = current && client.channel(current);
	const box = $('messages');
	const list = $('message-list');
	const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
	const fromBottom = box.scrollHeight - box.scrollTop;

	$('input').disabled = $('send').disabled = !ch;
	if (!ch) {
		$('conv-title').textContent = client.state === 'open' ? 'No channels yet' : 'Connecting…';
		$('conv-sub').textContent = '';
		list.replaceChildren();
		$('typing').textContent = '';
		return;
	}
	$('conv-title').textContent = title(ch);
	$('conv-sub').textContent = client.state !== 'open' ? ''
		: ch.type === 'direct' ? (isOnline(ch) ? 'online' : 'offline')
			: (ch.online.length ? `online: ${ch.online.map(display).join(', ')}` : 'nobody else online');
	const items = [];
	let prev = null;

	for (const m of ch.messages) {
		items.push(messageItem(ch, m, prev));
		prev = m;
	}
	for (const e of ch.pending)
		items.push(pendingItem(e));
	list.replaceChildren(...items);
	$('history-status').textContent = loadingHistory ? 'loading earlier messages…'
		: ch.hasMoreHistory ? '' : ch.messages.length ? 'the beginning of this conversation' : 'no messages yet';
	$('typing').textContent = typingLine(ch);
	box.dataset.channelId = ch.id;
	/* stay at the bottom, or keep the reader's place when history arrives */
	box.scrollTop = atBottom ? box.scrollHeight : box.scrollHeight - fromBottom;
	maybeMarkRead(ch);
	if (box.scrollHeight <= box.clientHeight && ch.hasMoreHistory)
		loadHistory(ch.id);
}

/* ---------------- actions ---------------- */

function maybeMarkRead(ch) {
	const box = $('messages');
	const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;

	if (ch.unread > 0 && atBottom && document.visibilityState === 'visible' && client.state === 'open')
		client.markRead(ch.id);
}

async function loadHistory(id) {
	if (loadingHistory || client.state !== 'open')
		return;
	loadingHistory = true;
	schedule();
	try {
		await client.history(id, {limit: 30});
	} catch (e) {
		console.warn('history:', e.message);
	} finally {
		loadingHistory = false;
		schedule();
	}
}

function select(id) {
	current = id;
	history.replaceState(null, '', `${location.search}#${encodeURIComponent(id)}`);
	$('messages').scrollTop = $('messages').scrollHeight;
	render();
	$('messages').scrollTop = $('messages').scrollHeight;
	$('input').focus();
}

$('messages').addEventListener('scroll', () => {
	const ch = current && client.channel(current);

	if (!ch)
		return;
	if ($('messages').scrollTop < 60 && ch.hasMoreHistory)
		loadHistory(ch.id);
	maybeMarkRead(ch);
});

$('input').addEventListener('input', () => {
	if (current && $('input').value)
		client.typing(current);
});

$('composer').addEventListener('submit', (ev) => {
	ev.preventDefault();
	const text = $('input').value.trim();

	if (!text || !current)
		return;
	$('input').value = '';
	client.send(current, text).catch((e) => {
		$('banner').hidden = false;
		$('banner').textContent = `Not sent: ${e.message}`;
	});
	const box = $('messages');

	box.scrollTop = box.scrollHeight;
	schedule();
	requestAnimationFrame(() => {
		box.scrollTop = box.scrollHeight;
	});
});

/* ---------------- search ---------------- */

/*
 * headline turns the server's headline (HTML: the text escaped, matches in
 * <mark>) into nodes, keeping nothing but text and <mark>.
 */
function headline(html) {
	const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
	const out = [];

	for (const n of doc.body.childNodes)
		out.push(n.nodeName === 'MARK' ? el('mark', '', n.textContent) : document.createTextNode(n.textContent));
	return out;
}

async function runSearch(query) {
	const box = $('search-box');
	const list = $('search-results');

	box.hidden = false;
	$('search-status').textContent = 'searching…';
	list.replaceChildren();
	try {
		const {results, hasMore} = await client.search(query, {limit: 20});

		$('search-status').textContent = results.length
			? `${results.length}${hasMore ? '+' : ''} result${results.length > 1 ? 's' : ''}` : 'nothing found';
		list.replaceChildren(...results.map((r) => {
			const li = el('li', 'search-hit');
			const ch = client.channel(r.channelId);
			const where = el('div', 'where', `${ch ? title(ch) : 'channel'} · ${display(r.senderId)} · ${time(r.createdAt)}`);
			const text = el('div', 'text');

			text.append(...headline(r.headline));
			li.dataset.channelId = r.channelId;
			li.dataset.seq = r.seq;
			li.append(where, text);
			li.addEventListener('click', () => select(r.channelId));
			return li;
		}));
	} catch (e) {
		$('search-status').textContent = `search failed: ${e.message}`;
	}
}

$('search-form').addEventListener('submit', (ev) => {
	ev.preventDefault();
	const q = $('search-input').value.trim();

	if (q)
		runSearch(q);
});
$('search-close').addEventListener('click', () => {
	$('search-box').hidden = true;
	$('search-input').value = '';
});

/* ---------------- wiring ---------------- */

client.on('change', schedule);
client.on('state', schedule);
client.on('typing', schedule);
client.on('typing_stopped', schedule);
client.on('reaction', schedule);
client.on('ready', async () => {
	if (previewsLoaded)
		return;
	previewsLoaded = true;
	/* one page per channel: previews, and who is on the other end of a DM */
	await Promise.all(client.channels.filter((c) => c.messages.length === 0 && c.hasMoreHistory)
		.map((c) => client.history(c.id, {limit: 30}).catch(() => null)));
	const box = $('messages');

	render();
	box.scrollTop = box.scrollHeight;
});
window.addEventListener('online', schedule);
window.addEventListener('offline', schedule);
document.addEventListener('visibilitychange', schedule);
$('app').hidden = false;
render();
