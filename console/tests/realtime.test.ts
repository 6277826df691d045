import { describe, expect, it } from 'vitest'
import { backoffDelay, RealtimeClient, realtimeUrl, type RealtimeStatus, type SocketLike, type Timers } from '../src/realtime'
import type { RealtimeEvent } from '../src/types'

/** A socket the test opens, feeds and closes by hand. */
class FakeSocket implements SocketLike {
  readyState = 0
  sent: string[] = []
  closed = false
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: unknown) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(data)
  }
  close(): void {
    this.closed = true
    this.readyState = 3
  }
  serverOpens(): void {
    this.readyState = 1
    this.onopen?.({})
  }
  serverSends(ev: Partial<RealtimeEvent> | string): void {
    this.onmessage?.({ data: typeof ev === 'string' ? ev : JSON.stringify(ev) })
  }
  serverCloses(code = 1006): void {
    this.readyState = 3
    this.onerror?.({})
    this.onclose?.({ code })
  }
}

/** Timers that run when the test says how much time passed. */
class FakeClock implements Timers {
  now = 0
  private seq = 0
  private tasks = new Map<number, { at: number; fn: () => void; every?: number }>()
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq
    this.tasks.set(id, { at: this.now + ms, fn })
    return id
  }
  clearTimeout(h: unknown): void {
    this.tasks.delete(h as number)
  }
  setInterval(fn: () => void, ms: number): unknown {
    const id = ++this.seq
    this.tasks.set(id, { at: this.now + ms, fn, every: ms })
    return id
  }
  clearInterval(h: unknown): void {
    this.tasks.delete(h as number)
  }
  advance(ms: number): void {
    const end = this.now + ms
    for (;;) {
      const due = [...this.tasks.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) break
      const [id, task] = due
      this.now = task.at
      if (task.every) task.at += task.every
      else this.tasks.delete(id)
      task.fn()
    }
    this.now = end
  }
  get pending(): number {
    return this.tasks.size
  }
}

function setup(extra: { random?: () => number } = {}) {
  const clock = new FakeClock()
  const sockets: FakeSocket[] = []
  const events: RealtimeEvent[] = []
  const statuses: RealtimeStatus[] = []
  let polls = 0
  let resyncs = 0
  let authLost = 0
  const client = new RealtimeClient({
    url: (since) => realtimeUrl({ protocol: 'http:', host: 'console.test' }, since),
    connect: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    onEvent: (ev) => events.push(ev),
    onPoll: () => polls++,
    onResync: () => resyncs++,
    onAuthLost: () => authLost++,
    onStatus: (s) => statuses.push(s),
    timers: clock,
    random: extra.random ?? (() => 1),
    baseDelayMs: 500,
    maxDelayMs: 8_000,
    pollMs: 5_000,
    seenLimit: 3,
  })
  const last = () => sockets[sockets.length - 1] as FakeSocket
  return { clock, sockets, events, statuses, client, last, polls: () => polls, resyncs: () => resyncs, authLost: () => authLost }
}

const ev = (id: string, kind = 'message.created'): RealtimeEvent => ({ id, kind, conversation_id: 'c1', payload: {}, at: '2025-01-01T00:00:00Z' })

describe('realtimeUrl', () => {
  it('uses ws or wss as the page does and resumes after the last id', () => {
    expect(realtimeUrl({ protocol: 'http:', host: '127.0.0.1:8080' }, null)).toBe('ws://127.0.0.1:8080/api/v1/realtime')
    expect(realtimeUrl({ protocol: 'https:', host: 'app.example.com' }, '01J9', { org: 'o-1', empty: '' })).toBe(
      'wss://app.example.com/api/v1/realtime?since=01J9&org=o-1',
    )
  })
})

describe('backoffDelay', () => {
  it('doubles from the base up to the ceiling, half of it random', () => {
    const max = () => 1
    const min = () => 0
    expect([0, 1, 2, 3, 4, 5, 60].map((a) => backoffDelay(a, 500, 8_000, max))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000])
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 500, 8_000, min))).toEqual([250, 500, 1000, 2000, 4000, 4000])
  })
})

describe('RealtimeClient', () => {
  it('hands on events in order and remembers the last id', () => {
    const t = setup()
    t.client.start()
    expect(t.last().url).toBe('ws://console.test/api/v1/realtime')
    t.last().serverOpens()
    t.last().serverSends(ev('e1'))
    t.last().serverSends(ev('e2', 'conversation.updated'))
    expect(t.events.map((e) => e.id)).toEqual(['e1', 'e2'])
    expect(t.client.lastId).toBe('e2')
    expect(t.statuses).toEqual(['connecting', 'open'])
  })

  it('reconnects with ?since= the last id, backing off after each failure and resetting once open', () => {
    const t = setup()
    t.client.start()
    t.last().serverOpens()
    t.last().serverSends(ev('e7'))
    t.last().serverCloses()
    expect(t.client.status).toBe('closed')
    expect(t.sockets).toHaveLength(1)

    t.clock.advance(499)
    expect(t.sockets).toHaveLength(1)
    t.clock.advance(1)
    expect(t.sockets).toHaveLength(2)
    expect(t.last().url).toBe('ws://console.test/api/v1/realtime?since=e7')

    // The server is still down: 1 s, then 2 s.
    t.last().serverCloses()
    t.clock.advance(999)
    expect(t.sockets).toHaveLength(2)
    t.clock.advance(1)
    expect(t.sockets).toHaveLength(3)
    t.last().serverCloses()
    t.clock.advance(2000)
    expect(t.sockets).toHaveLength(4)
    expect(t.last().url).toBe('ws://console.test/api/v1/realtime?since=e7')

    // Open again: the next drop starts from the base delay.
    t.last().serverOpens()
    t.last().serverSends(ev('e8'))
    t.last().serverCloses()
    t.clock.advance(500)
    expect(t.sockets).toHaveLength(5)
    expect(t.last().url).toBe('ws://console.test/api/v1/realtime?since=e8')
  })

  it('drops an event whose id it has seen (a replay overlapping what arrived), and garbage frames', () => {
    const t = setup()
    t.client.start()
    t.last().serverOpens()
    t.last().serverSends(ev('a'))
    t.last().serverSends(ev('b'))
    t.last().serverSends(ev('a'))
    t.last().serverSends('not json')
    t.last().serverSends({ kind: 'message.created' })
    expect(t.events.map((e) => e.id)).toEqual(['a', 'b'])
    expect(t.client.lastId).toBe('b')

    t.last().serverCloses()
    t.clock.advance(500)
    t.last().serverOpens()
    t.last().serverSends(ev('b'))
    t.last().serverSends(ev('c'))
    expect(t.events.map((e) => e.id)).toEqual(['a', 'b', 'c'])
  })

  it('remembers a bounded number of ids, forgetting the oldest', () => {
    const t = setup()
    t.client.start()
    t.last().serverOpens()
    for (const id of ['1', '2', '3', '4']) t.last().serverSends(ev(id))
    t.last().serverSends(ev('1')) // forgotten (limit 3): handed on again
    t.last().serverSends(ev('4'))
    expect(t.events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '1'])
  })

  it('polls every 5 s only while disconnected, and asks for a resync whenever a connection opens', () => {
    const t = setup({ random: () => 0 })
    t.client.start()
    t.last().serverOpens()
    expect(t.resyncs()).toBe(1)
    t.clock.advance(20_000)
    expect(t.polls()).toBe(0)

    t.last().serverCloses()
    // Reconnects keep failing for a while.
    for (let i = 0; i < 6; i++) {
      t.clock.advance(2_000)
      t.last().serverCloses()
    }
    t.clock.advance(3_000) // 15 s since the drop
    expect(t.polls()).toBe(3)
    expect(t.resyncs()).toBe(1)

    t.clock.advance(10_000)
    t.last().serverOpens()
    expect(t.resyncs()).toBe(2)
    const polled = t.polls()
    t.clock.advance(30_000)
    expect(t.polls()).toBe(polled)
  })

  it('starts again without since when the server no longer keeps the events after it (4410)', () => {
    const t = setup()
    t.client.start()
    t.last().serverOpens()
    t.last().serverSends(ev('e1'))
    t.last().serverCloses(4410)
    expect(t.client.lastId).toBeNull()
    t.clock.advance(500)
    expect(t.last().url).toBe('ws://console.test/api/v1/realtime')
    t.last().serverOpens()
    expect(t.resyncs()).toBe(2)
  })

  it('gives up its since after three failed handshakes in a row (a browser sees the 410 only as a failure)', () => {
    const t = setup()
    t.client.start()
    t.last().serverOpens()
    t.last().serverSends(ev('e1'))
    t.last().serverCloses()
    for (let i = 0; i < 3; i++) {
      t.clock.advance(10_000)
      expect(t.last().url).toBe('ws://console.test/api/v1/realtime?since=e1')
      t.last().serverCloses()
    }
    t.clock.advance(10_000)
    expect(t.last().url).toBe('ws://console.test/api/v1/realtime')
  })

  it('says when the server closed for lost credentials (1008), and keeps trying', () => {
    const t = setup()
    t.client.start()
    t.last().serverOpens()
    t.last().serverCloses(1008)
    expect(t.authLost()).toBe(1)
    t.clock.advance(500)
    expect(t.sockets).toHaveLength(2)
  })

  it('sends frames only while open, and stop closes the socket and cancels every timer', () => {
    const t = setup()
    t.client.start()
    expect(t.client.send({ type: 'typing', conversation_id: 'c1' })).toBe(false)
    t.last().serverOpens()
    expect(t.client.send({ type: 'typing', conversation_id: 'c1' })).toBe(true)
    expect(t.last().sent).toEqual(['{"type":"typing","conversation_id":"c1"}'])

    t.last().serverCloses()
    expect(t.clock.pending).toBe(2) // the reconnect and the poll
    t.client.stop()
    expect(t.clock.pending).toBe(0)
    expect(t.client.status).toBe('idle')
    t.clock.advance(60_000)
    expect(t.sockets).toHaveLength(1)

    t.client.start()
    t.last().serverOpens()
    t.client.stop()
    expect(t.sockets[1]?.closed).toBe(true)
  })
})
