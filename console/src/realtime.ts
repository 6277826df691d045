// The console's realtime connection (GET /api/v1/realtime, a WebSocket). It remembers the id
// of the last event it handed on and reconnects with ?since=<that id> after a drop, waiting
// longer after each failed attempt, so nothing is missed; events seen twice (a replay that
// overlaps) are dropped by id. While there is no connection it asks its owner to poll, and
// each time a connection opens it asks the owner to reload what it shows (what happened before
// the socket was there, or what polling already brought in). When the server no longer keeps
// the events after our id (close code 4410, or handshakes that keep failing, which is how a
// browser sees the server's 410) it starts again without since.
// Timers, the socket and randomness are injected so tests/realtime.test.ts drives it by hand.
import type { RealtimeEvent } from './types'

/** The part of a WebSocket this client uses. */
export interface SocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code?: number }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

const OPEN = 1

/** The server's close codes (modules/realtime/conn.go). */
export const CLOSE_POLICY = 1008
export const CLOSE_RELOAD = 4410

/** Handshakes in a row that fail before the client stops asking for events after its id. */
const FAILURES_BEFORE_FRESH_START = 3

export type RealtimeStatus = 'idle' | 'connecting' | 'open' | 'closed'

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (h) => globalThis.clearInterval(h as ReturnType<typeof setInterval>),
}

export interface RealtimeOptions {
  /** The socket's address for a given resume point (null: from now on). */
  url: (since: string | null) => string
  connect?: (url: string) => SocketLike
  onEvent: (ev: RealtimeEvent) => void
  /** Called every pollMs while disconnected, so the page stays roughly current. */
  onPoll?: () => void
  /** Called whenever a connection opens: reload what is on screen (the replay brings the rest). */
  onResync?: () => void
  /** The server closed the socket because the credentials no longer admit it (log in again). */
  onAuthLost?: () => void
  onStatus?: (status: RealtimeStatus) => void
  timers?: Timers
  random?: () => number
  baseDelayMs?: number
  maxDelayMs?: number
  pollMs?: number
  /** How many event ids to remember for dropping repeats. */
  seenLimit?: number
}

/**
 * The wait before reconnect attempt `attempt` (0 for the first): doubling from base up to max,
 * with half of it random so a server restart is not met by every console at the same instant.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (ceiling / 2) * random())
}

/** The socket address on the page's own origin: ws:// or wss:// as the page is http or https. */
export function realtimeUrl(
  location: { protocol: string; host: string },
  since: string | null,
  extra: Record<string, string | null | undefined> = {},
): string {
  const params = new URLSearchParams()
  if (since) params.set('since', since)
  for (const [k, v] of Object.entries(extra)) if (v) params.set(k, v)
  const qs = params.toString()
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${scheme}//${location.host}/api/v1/realtime${qs ? `?${qs}` : ''}`
}

function isEvent(v: unknown): v is RealtimeEvent {
  if (typeof v !== 'object' || v === null) return false
  const o = v as Record<string, unknown>
  return (typeof o.id === 'string' || typeof o.id === 'number') && typeof o.kind === 'string'
}

export class RealtimeClient {
  private readonly opts: Required<Omit<RealtimeOptions, 'onPoll' | 'onResync' | 'onStatus' | 'onAuthLost'>> &
    Pick<RealtimeOptions, 'onPoll' | 'onResync' | 'onStatus' | 'onAuthLost'>
  private socket: SocketLike | null = null
  private reconnectTimer: unknown = null
  private pollTimer: unknown = null
  private attempt = 0
  private stopped = true
  /** Handshakes that failed since the last open. */
  private failures = 0
  private opened = false
  private readonly seen = new Set<string>()
  private readonly seenOrder: string[] = []
  private _lastId: string | null = null
  private _status: RealtimeStatus = 'idle'

  constructor(opts: RealtimeOptions) {
    this.opts = {
      connect: (url) => new WebSocket(url) as unknown as SocketLike,
      timers: realTimers,
      random: Math.random,
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      pollMs: 5_000,
      seenLimit: 1_000,
      ...opts,
    }
  }

  /** The id of the last event handed on: where a reconnect resumes. */
  get lastId(): string | null {
    return this._lastId
  }

  get status(): RealtimeStatus {
    return this._status
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.open()
  }

  stop(): void {
    this.stopped = true
    this.opts.timers.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.stopPolling()
    const s = this.socket
    this.socket = null
    if (s) {
      s.onopen = s.onmessage = s.onclose = s.onerror = null
      s.close(1000, 'stopped')
    }
    this.setStatus('idle')
  }

  /** Sends a JSON frame when connected; answers whether it went. */
  send(frame: object): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false
    this.socket.send(JSON.stringify(frame))
    return true
  }

  /** Hands on an event unless its id was seen before; answers whether it was new. */
  accept(ev: RealtimeEvent): boolean {
    const id = String(ev.id)
    if (this.seen.has(id)) return false
    this.seen.add(id)
    this.seenOrder.push(id)
    while (this.seenOrder.length > this.opts.seenLimit) this.seen.delete(this.seenOrder.shift() as string)
    this._lastId = id
    this.opts.onEvent({ ...ev, id })
    return true
  }

  private setStatus(s: RealtimeStatus): void {
    if (this._status === s) return
    this._status = s
    this.opts.onStatus?.(s)
  }

  private open(): void {
    this.setStatus('connecting')
    let socket: SocketLike
    try {
      socket = this.opts.connect(this.opts.url(this._lastId))
    } catch {
      this.dropped()
      return
    }
    this.socket = socket
    this.opened = false
    socket.onopen = () => {
      if (this.socket !== socket) return
      this.attempt = 0
      this.failures = 0
      this.opened = true
      this.stopPolling()
      this.setStatus('open')
      this.opts.onResync?.()
    }
    socket.onmessage = (msg) => {
      if (this.socket !== socket || typeof msg.data !== 'string') return
      let parsed: unknown
      try {
        parsed = JSON.parse(msg.data)
      } catch {
        return
      }
      if (isEvent(parsed)) this.accept(parsed)
    }
    socket.onclose = (ev) => {
      if (this.socket !== socket) return
      this.socket = null
      if (ev?.code === CLOSE_RELOAD) this._lastId = null
      if (ev?.code === CLOSE_POLICY) this.opts.onAuthLost?.()
      if (!this.opened && ++this.failures >= FAILURES_BEFORE_FRESH_START) this._lastId = null
      this.dropped()
    }
    // A failed handshake is followed by close, which does the work.
    socket.onerror = () => {}
  }

  private dropped(): void {
    if (this.stopped) return
    this.setStatus('closed')
    this.startPolling()
    const delay = backoffDelay(this.attempt, this.opts.baseDelayMs, this.opts.maxDelayMs, this.opts.random)
    this.attempt++
    this.opts.timers.clearTimeout(this.reconnectTimer)
    this.reconnectTimer = this.opts.timers.setTimeout(() => {
      this.reconnectTimer = null
      if (!this.stopped) this.open()
    }, delay)
  }

  private startPolling(): void {
    if (this.pollTimer !== null || !this.opts.onPoll) return
    const poll = this.opts.onPoll
    this.pollTimer = this.opts.timers.setInterval(() => poll(), this.opts.pollMs)
  }

  private stopPolling(): void {
    if (this.pollTimer === null) return
    this.opts.timers.clearInterval(this.pollTimer)
    this.pollTimer = null
  }
}
