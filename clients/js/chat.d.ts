/**
 * Type declarations of chat.js, the JavaScript client of the chat
 * WebSocket protocol (v1).  See docs/client.md.
 */

/** A message as the server sends it (timestamps ISO 8601 UTC). */
export interface Message {
	id: string;
	channelId: string;
	/** 1, 2, 3, ... per channel, without gaps, in commit order. */
	seq: number;
	senderId: string;
	clientId: string | null;
	/** Empty once the message is deleted. */
	content: string;
	kind: string;
	replyTo: string | null;
	attachments: unknown;
	createdAt: string;
	editedAt: string | null;
	deletedAt: string | null;
	/** Present when the message has reactions. */
	reactions?: Reaction[];
}

/** One emoji on a message: how many reacted, and who. */
export interface Reaction {
	emoji: string;
	count: number;
	users: string[];
}

/** A message found by search(). */
export interface SearchResult {
	messageId: string;
	channelId: string;
	seq: number;
	senderId: string;
	/** The current text. */
	content: string;
	/** HTML: the text escaped, the matches wrapped in <mark>. */
	headline: string;
	createdAt: string;
	editedAt: string | null;
}

/** A send waiting for its ack. */
export interface OutboxEntry {
	clientId: string;
	channelId: string;
	content: string;
	kind: string;
	replyTo: string | null;
	attachments: unknown;
	/** When send() was called (ISO 8601). */
	createdAt: string;
}

/** A channel as listed in the server's ready and joined frames. */
export interface ChannelInfo {
	id: string;
	type: 'direct' | 'group';
	name: string | null;
	lastSeq: number;
	lastReadSeq: number;
	unread: number;
	lastChange?: number;
	online: string[];
	role?: 'member' | 'admin';
}

/** The client's live view of one channel. */
export interface Channel {
	readonly id: string;
	readonly type: 'direct' | 'group' | null;
	readonly name: string | null;
	readonly role: 'member' | 'admin' | null;
	/**
	 * The position: every message up to this seq has been delivered (or
	 * existed before this client first connected: history() fetches those).
	 */
	readonly lastSeq: number | null;
	/** The server's edit/delete counter this client has caught up with. */
	readonly lastChange: number | null;
	readonly lastReadSeq: number;
	/** Messages of others after lastReadSeq, not deleted. */
	readonly unread: number;
	/** False once history() has reached the first message. */
	readonly hasMoreHistory: boolean;
	/** True while a sync of this channel is under way. */
	readonly syncing: boolean;
	/** Other members' read positions, as seen in read events. */
	readonly readBy: Readonly<Record<string, number>>;
	/** The messages held, ordered by seq, each seq once. */
	readonly messages: readonly Message[];
	/** This channel's sends waiting for their ack, in send order. */
	readonly pending: readonly OutboxEntry[];
	/** The other members with a live connection (never the user). */
	readonly online: string[];
	/** The other members typing now. */
	readonly typing: string[];
	/** The members seen so far (online lists, senders, readers, typers). */
	readonly members: string[];
	readonly oldestSeq: number | null;
	readonly newestSeq: number;
}

/** Anything with the Web Storage methods, sync or async (localStorage works). */
export interface StorageAdapter {
	getItem(key: string): string | null | Promise<string | null>;
	setItem(key: string, value: string): void | Promise<void>;
	removeItem?(key: string): void | Promise<void>;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface ChatClientOptions {
	/** ws://host:port/ws or wss://...; the token is appended as ?token=. */
	url: string;
	/** A token, or a function returning a fresh one (called on every connect and before expiry). */
	token: TokenSource;
	/** A WebSocket constructor; default globalThis.WebSocket (in Node.js pass the `ws` package). */
	WebSocket?: unknown;
	/** Keeps the outbox and the positions across restarts of the client. */
	storage?: StorageAdapter | null;
	/** The storage key; default "chat:" + the token's sub. */
	storageKey?: string;
	reconnect?: {minDelayMs?: number; maxDelayMs?: number; factor?: number; jitter?: number};
	/** Ask with a ping after this much silence; default: the server's heartbeatMs. */
	heartbeatMs?: number;
	/** Give up on a connection when a ping gets no answer in this long; default heartbeatMs. */
	heartbeatTimeoutMs?: number;
	/** Give up on a connection that is not ready after this long; default 10000. */
	connectTimeoutMs?: number;
	/**
	 * Pace sends and typing under the server's rate limit (default: 90 % of
	 * what ready announces, else of 30/s with bursts of 80); false: no pacing.
	 */
	rateLimit?: {perSecond?: number; burst?: number} | false;
	/** Connect at once (default true). */
	autoConnect?: boolean;
	/**
	 * Connect with ?resume=1 (default true): the server holds live messages
	 * until the first sync has given this client's positions, so a
	 * reconnect repeats no message frame. false: the 1.0 behaviour.
	 */
	resume?: boolean;
}

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Refusals and failures: the server's error codes, plus a few of the client's own. */
export class ChatError extends Error {
	code: 'bad_request' | 'not_member' | 'not_found' | 'forbidden' | 'too_large' | 'rate_limited' |
		'internal' | 'unauthorized' | 'token_expired' | 'timeout' | 'disconnected' | 'closed' | 'bad_frame' | string;
	/** The server's error frame, when there was one. */
	frame: Record<string, unknown> | null;
}

export interface ServerSettings {
	heartbeatMs: number;
	typingTimeoutMs: number;
	typingDebounceMs: number;
	maxMessageBytes: number;
}

export interface ChatEvents {
	state: (state: ConnectionState, info: {attempt?: number; delayMs?: number; error?: ChatError}) => void;
	connecting: (info: object) => void;
	open: (info: object) => void;
	reconnecting: (info: {attempt: number; delayMs: number}) => void;
	closed: (info: {error?: ChatError}) => void;
	retry: (info: {attempt: number; delayMs: number}) => void;
	disconnect: (info: {code: number; reason: string; wasReady: boolean}) => void;
	ready: (frame: Record<string, unknown>) => void;
	/** Each new message once, in seq order per channel (own sends too, on their ack). */
	message: (message: Message) => void;
	ack: (info: {clientId: string; message: Message | null; duplicate: boolean}) => void;
	send_failed: (info: {entry: OutboxEntry; error: ChatError}) => void;
	history: (info: {channelId: string; messages: Message[]; hasMore: boolean}) => void;
	synced: (info: {channelId: string; lastSeq: number}) => void;
	typing: (info: {channelId: string; userId: string; expiresInMs: number}) => void;
	typing_stopped: (info: {channelId: string; userId: string}) => void;
	presence: (info: {userId: string; status: 'online' | 'offline'}) => void;
	read: (info: {channelId: string; userId: string; seq: number}) => void;
	message_updated: (message: Message) => void;
	message_deleted: (info: {channelId: string; messageId: string; seq: number}) => void;
	/** A message's reactions changed (by anyone, this user included). */
	reaction: (info: {channelId: string; messageId: string; seq: number; reactions: Reaction[]}) => void;
	joined: (channel: Channel) => void;
	left: (info: {channelId: string}) => void;
	/** Something of the state changed (channelId null: possibly everything). */
	change: (info: {channelId: string | null}) => void;
	/** Every frame from the server, after the client has handled it. */
	frame: (frame: Record<string, unknown>) => void;
	error: (error: ChatError | Error) => void;
}

export class ChatClient {
	constructor(options: ChatClientOptions);
	readonly url: string;
	readonly state: ConnectionState;
	readonly userId: string | null;
	readonly connectionId: string | null;
	readonly server: ServerSettings | null;
	readonly channels: Channel[];
	/** Copies of the sends not yet acknowledged, oldest first. */
	readonly outbox: OutboxEntry[];
	/** The current WebSocket, or null (diagnostics and tests). */
	readonly socket: unknown;

	channel(id: string): Channel | null;
	connect(): void;
	close(): void;
	setToken(token: TokenSource): void;
	/** Resolves with the stored message on its ack; survives disconnects. */
	send(channelId: string, content: string,
		opts?: {clientId?: string; kind?: string; replyTo?: string; attachments?: unknown}): Promise<Message>;
	/** Loads the page before the oldest message held (or opts.before). */
	history(channelId: string, opts?: {limit?: number; before?: number}): Promise<{messages: Message[]; hasMore: boolean}>;
	/** Moves the read marker (default: the newest message held); false when it would not move. */
	markRead(channelId: string, seq?: number): boolean;
	/** Call on every keystroke: sends at most once per server typingDebounceMs. */
	typing(channelId: string): boolean;
	edit(messageId: string, content: string): Promise<Message>;
	delete(messageId: string): Promise<void>;
	/** Add (or with {remove: true} remove) the user's reaction; resolves the message's reactions now. */
	react(messageId: string, emoji: string, opts?: {remove?: boolean}): Promise<Reaction[]>;
	unreact(messageId: string, emoji: string): Promise<Reaction[]>;
	/** Full-text search over the user's channels, newest first. */
	search(query: string, opts?: {channelId?: string; before?: string; limit?: number}): Promise<{results: SearchResult[]; hasMore: boolean}>;
	/** Who of the channel is online now (the user included). */
	presence(channelId: string): Promise<string[]>;

	on<E extends keyof ChatEvents>(event: E, fn: ChatEvents[E]): () => void;
	once<E extends keyof ChatEvents>(event: E, fn: ChatEvents[E]): () => void;
	off<E extends keyof ChatEvents>(event: E, fn: ChatEvents[E]): void;
}

export function connect(options: ChatClientOptions): ChatClient;
export function uuid(): string;
/** The payload of a JWT, unchecked (the server checks it); null if unreadable. */
export function jwtClaims(token: string): Record<string, unknown> | null;
export default ChatClient;
