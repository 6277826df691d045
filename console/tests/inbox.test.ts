import { describe, expect, it } from 'vitest'
import {
  addAnswer,
  addMessage,
  applyRetryAnswer,
  applyEvent,
  applyThreadEvent,
  changesUnreadCounts,
  EMPTY_VIEW,
  insertCanned,
  matchCanned,
  matchesView,
  neighbour,
  previewOf,
  shortcutFor,
  slashToken,
  unreadConversations,
  viewQuery,
  type ApplyContext,
  type InboxView,
} from '../src/inbox'
import type { CannedResponse, Conversation, Message, RealtimeEvent } from '../src/types'

const ME = 'u-me'

function conv(id: string, minute: number, extra: Partial<Conversation> = {}): Conversation {
  return {
    id,
    channel_id: 'ch-1',
    channel_type: 'api',
    contact_id: `ct-${id}`,
    contact_name: `Contact ${id}`,
    status: 'open',
    snoozed_until: null,
    priority: 'normal',
    type: 'service',
    assignee_id: null,
    team: '',
    subject: '',
    tags: [],
    unread: 0,
    preview: '',
    last_message_at: new Date(Date.UTC(2025, 0, 1, 10, minute)).toISOString(),
    first_response_at: null,
    resolved_at: null,
    created_at: '2025-01-01T09:00:00Z',
    updated_at: '2025-01-01T09:00:00Z',
    ...extra,
  }
}

function message(id: string, conversationId: string, extra: Partial<Message> = {}): Message {
  return {
    id,
    conversation_id: conversationId,
    channel_id: 'ch-1',
    direction: 'in',
    author_kind: 'contact',
    author_id: 'ct',
    private: false,
    content: 'hello',
    content_type: 'text',
    status: 'received',
    failure_reason: '',
    created_at: '2025-01-01T11:00:00Z',
    attachments: [],
    ...extra,
  }
}

let seq = 0
function event(kind: string, payload: unknown, conversationId?: string): RealtimeEvent {
  return { id: `ev-${++seq}`, kind, conversation_id: conversationId ?? null, payload, at: '2025-01-01T11:00:00Z' }
}

const all: ApplyContext = { view: EMPTY_VIEW, me: ME, openId: null }
const ids = (items: Conversation[]) => items.map((c) => c.id)

describe('views', () => {
  it('match what the server lists', () => {
    const mine: InboxView = { ...EMPTY_VIEW, assignee: 'me' }
    const none: InboxView = { ...EMPTY_VIEW, assignee: 'none' }
    expect(matchesView(conv('a', 1, { assignee_id: ME }), mine, ME)).toBe(true)
    expect(matchesView(conv('a', 1, { assignee_id: 'u-other' }), mine, ME)).toBe(false)
    expect(matchesView(conv('a', 1), none, ME)).toBe(true)
    expect(matchesView(conv('a', 1, { assignee_id: ME }), none, ME)).toBe(false)
    // No status: everything but closed.
    expect(matchesView(conv('a', 1, { status: 'resolved' }), EMPTY_VIEW, ME)).toBe(true)
    expect(matchesView(conv('a', 1, { status: 'closed' }), EMPTY_VIEW, ME)).toBe(false)
    expect(matchesView(conv('a', 1, { status: 'closed' }), { ...EMPTY_VIEW, status: 'closed' }, ME)).toBe(true)
    expect(matchesView(conv('a', 1, { tags: ['vip'] }), { ...EMPTY_VIEW, tag: ' VIP ' }, ME)).toBe(true)
    expect(matchesView(conv('a', 1, { tags: null }), { ...EMPTY_VIEW, tag: 'vip' }, ME)).toBe(false)
    expect(matchesView(conv('a', 1), { ...EMPTY_VIEW, channel_id: 'ch-2' }, ME)).toBe(false)
  })

  it('turn into the list query, leaving out what is empty', () => {
    expect(viewQuery({ ...EMPTY_VIEW, assignee: 'me', tag: ' VIP ' })).toEqual({
      assignee: 'me',
      status: undefined,
      channel_id: undefined,
      contact_id: undefined,
      tag: 'vip',
    })
  })
})

describe('applyEvent', () => {
  const list = [conv('a', 30, { unread: 0 }), conv('b', 20, { unread: 2 }), conv('c', 10)]

  it('moves a conversation with a new inbound message to the top and bumps its unread count', () => {
    const m = message('m1', 'c', { content: '你好，我的订单还没到', created_at: '2025-01-01T11:00:00Z' })
    const { items, fetch } = applyEvent(list, event('message.created', m, 'c'), all)
    expect(ids(items)).toEqual(['c', 'a', 'b'])
    expect(items[0]).toMatchObject({ unread: 1, preview: '你好，我的订单还没到', last_message_at: '2025-01-01T11:00:00Z' })
    expect(fetch).toEqual([])
    // The list passed in is left alone.
    expect(ids(list)).toEqual(['a', 'b', 'c'])
  })

  it('does not count a message in the open conversation as unread', () => {
    const { items } = applyEvent(list, event('message.created', message('m1', 'b'), 'b'), { ...all, openId: 'b' })
    expect(items[0]).toMatchObject({ id: 'b', unread: 2 })
  })

  it('clears unread on an agent reply, and leaves the list alone for notes', () => {
    const reply = message('m2', 'b', { direction: 'out', author_kind: 'agent', status: 'queued' })
    expect(applyEvent(list, event('message.created', reply, 'b'), all).items[0]).toMatchObject({ id: 'b', unread: 0 })
    const note = message('m3', 'c', { direction: 'internal', private: true, status: 'note' })
    expect(applyEvent(list, event('message.created', note, 'c'), all).items).toBe(list)
  })

  it('reopens a resolved conversation its contact writes to (as the server does)', () => {
    const resolved = [conv('a', 30), conv('r', 5, { status: 'resolved', resolved_at: '2025-01-01T10:06:00Z' })]
    const { items } = applyEvent(resolved, event('message.created', message('m1', 'r'), 'r'), all)
    expect(items[0]).toMatchObject({ id: 'r', status: 'open', resolved_at: null, unread: 1 })
    // …which takes it out of a "resolved" view.
    const view: InboxView = { ...EMPTY_VIEW, status: 'resolved' }
    expect(ids(applyEvent([resolved[1] as Conversation], event('message.created', message('m1', 'r'), 'r'), { ...all, view }).items)).toEqual([])
  })

  it('does not count a message twice when the conversation was fetched after it was stored', () => {
    // conversation.created asked for a fetch; its answer (holding the message) overtook message.created.
    const fetched = [conv('n', 40, { unread: 1, preview: '你好', last_message_at: '2025-01-01T11:00:00.123456Z' })]
    const m = message('m1', 'n', { content: '你好', created_at: '2025-01-01T11:00:00.123456Z' })
    const { items } = applyEvent(fetched, event('message.created', m, 'n'), all)
    expect(items[0]?.unread).toBe(1)
    // A later message with the same text is new.
    const later = message('m2', 'n', { content: '你好', created_at: '2025-01-01T11:00:05Z' })
    expect(applyEvent(items, event('message.created', later, 'n'), all).items[0]?.unread).toBe(2)
  })

  it('asks for a conversation it does not list', () => {
    const { items, fetch } = applyEvent(list, event('message.created', message('m1', 'zz'), 'zz'), all)
    expect(items).toBe(list)
    expect(fetch).toEqual(['zz'])
  })

  it('takes the conversation id from the payload when the event has none', () => {
    const { items } = applyEvent(list, event('message.created', message('m1', 'c')), all)
    expect(ids(items)).toEqual(['c', 'a', 'b'])
  })

  it('inserts a created conversation that fits the view, and fetches its contact name', () => {
    const created = { ...conv('n', 40), contact_name: '', tags: null }
    const { items, fetch } = applyEvent(list, event('conversation.created', created, 'n'), all)
    expect(ids(items)).toEqual(['n', 'a', 'b', 'c'])
    expect(items[0]?.tags).toEqual([])
    expect(fetch).toEqual(['n'])
    // Then its first message arrives: one unread, not two conversations.
    const next = applyEvent(items, event('message.created', message('m1', 'n', { created_at: '2025-01-01T10:40:00Z' }), 'n'), all)
    expect(ids(next.items)).toEqual(['n', 'a', 'b', 'c'])
    expect(next.items[0]?.unread).toBe(1)

    const mine: ApplyContext = { ...all, view: { ...EMPTY_VIEW, assignee: 'me' } }
    expect(applyEvent(list, event('conversation.created', created, 'n'), mine).items).toBe(list)
  })

  it('applies status, assignment and unread changes, dropping what leaves the view', () => {
    const mine: ApplyContext = { ...all, view: { ...EMPTY_VIEW, assignee: 'me' } }
    const assigned = [conv('a', 30, { assignee_id: ME, unread: 3 }), conv('b', 20, { assignee_id: ME })]
    let r = applyEvent(assigned, event('conversation.updated', { id: 'a', changes: { unread: 0 } }, 'a'), mine)
    expect(r.items[0]).toMatchObject({ id: 'a', unread: 0 })
    r = applyEvent(r.items, event('conversation.updated', { id: 'a', changes: { status: { from: 'open', to: 'pending' }, priority: 'high' } }, 'a'), mine)
    expect(r.items[0]).toMatchObject({ id: 'a', status: 'pending', priority: 'high' })
    r = applyEvent(r.items, event('conversation.updated', { id: 'b', changes: { assignee_id: 'u-other' } }, 'b'), mine)
    expect(ids(r.items)).toEqual(['a'])
    r = applyEvent(r.items, event('conversation.updated', { id: 'a', changes: { status: { from: 'pending', to: 'closed' } } }, 'a'), mine)
    expect(ids(r.items)).toEqual([])
    expect(r.fetch).toEqual([])
  })

  it('fetches a conversation whose tags changed, or that may have come into the view', () => {
    const r = applyEvent(list, event('conversation.updated', { id: 'a', changes: { tags: true } }, 'a'), all)
    expect(r.fetch).toEqual(['a'])
    const unassigned: ApplyContext = { ...all, view: { ...EMPTY_VIEW, assignee: 'none' } }
    expect(applyEvent([], event('conversation.updated', { id: 'x', changes: { assignee_id: null } }, 'x'), unassigned).fetch).toEqual(['x'])
    expect(applyEvent([], event('conversation.updated', { id: 'x', changes: { unread: 0 } }, 'x'), unassigned).fetch).toEqual([])
  })

  it('ignores kinds it does not know', () => {
    expect(applyEvent(list, event('typing', { user_id: 'u' }, 'a'), all).items).toBe(list)
    expect(applyEvent(list, event('presence', {}), all).fetch).toEqual([])
  })

  it('counts conversations with unread messages for the badge', () => {
    expect(unreadConversations(list)).toBe(1)
    const { items } = applyEvent(list, event('message.created', message('m1', 'a'), 'a'), all)
    expect(unreadConversations(items)).toBe(2)
  })
})

describe('changesUnreadCounts', () => {
  it.each([
    ['a new conversation', event('conversation.created', conv('n', 1), 'n'), true],
    ['a customer message', event('message.created', message('m1', 'a'), 'a'), true],
    ['an agent reply (clears unread)', event('message.created', message('m2', 'a', { direction: 'out' }), 'a'), true],
    ['a private note', event('message.created', message('m3', 'a', { private: true, direction: 'internal' }), 'a'), false],
    ['a status change', event('conversation.updated', { id: 'a', changes: { status: { from: 'open', to: 'closed' } } }, 'a'), true],
    ['an assignment', event('conversation.updated', { id: 'a', changes: { assignee_id: ME } }, 'a'), true],
    ['marked read', event('conversation.updated', { id: 'a', changes: { unread: 0 } }, 'a'), true],
    ['new tags', event('conversation.updated', { id: 'a', changes: { tags: 'changed' } }, 'a'), false],
    ['typing', event('typing', { user_id: 'u' }, 'a'), false],
    ['a delivery status', event('message.updated', { id: 'm2', status: 'delivered' }, 'a'), false],
  ])('%s', (_, ev, want) => {
    expect(changesUnreadCounts(ev)).toBe(want)
  })
})

describe('applyThreadEvent', () => {
  const thread = [message('m1', 'c1', { created_at: '2025-01-01T10:00:00Z' })]

  it('adds a message once, even when our POST answer and the event both bring it', () => {
    const reply = message('m2', 'c1', { direction: 'out', status: 'queued', created_at: '2025-01-01T10:01:00Z' })
    const once = addMessage(thread, reply)
    const twice = applyThreadEvent(once, event('message.created', reply, 'c1'), 'c1')
    expect(twice.map((m) => m.id)).toEqual(['m1', 'm2'])
  })

  it('keeps what the live stream said when the answer to our POST arrives after it', () => {
    const queued = message('m2', 'c1', { direction: 'out', status: 'queued', created_at: '2025-01-01T10:01:00Z' })
    let t = applyThreadEvent(thread, event('message.created', queued, 'c1'), 'c1')
    t = applyThreadEvent(t, event('message.updated', { id: 'm2', status: 'sent' }, 'c1'), 'c1')
    t = addAnswer(t, queued)
    expect(t.map((m) => [m.id, m.status])).toEqual([
      ['m1', 'received'],
      ['m2', 'sent'],
    ])
    // Without events yet, the answer is what there is.
    expect(addAnswer(thread, queued).map((m) => m.id)).toEqual(['m1', 'm2'])
  })

  it('applies a retry answer only to a message still shown as failed', () => {
    const failed = [message('m2', 'c1', { direction: 'out', status: 'failed', failure_reason: 'HTTP 500' })]
    const answer = message('m2', 'c1', { direction: 'out', status: 'queued', failure_reason: '' })
    expect(applyRetryAnswer(failed, answer)[0]).toMatchObject({ status: 'queued', failure_reason: '' })
    const alreadySent = [{ ...(failed[0] as Message), status: 'sent', failure_reason: '' }]
    expect(applyRetryAnswer(alreadySent, answer)[0]?.status).toBe('sent')
  })

  it('ignores another conversation, and adds notes', () => {
    expect(applyThreadEvent(thread, event('message.created', message('x', 'c2'), 'c2'), 'c1')).toBe(thread)
    const note = message('n1', 'c1', { private: true, direction: 'internal', status: 'note', created_at: '2025-01-01T10:02:00Z' })
    expect(applyThreadEvent(thread, event('note.created', note, 'c1'), 'c1').map((m) => m.id)).toEqual(['m1', 'n1'])
  })

  it('shows a failure with its reason, and clears it when a retry is sent', () => {
    const reply = message('m2', 'c1', { direction: 'out', status: 'queued' })
    let t = addMessage(thread, reply)
    t = applyThreadEvent(t, event('message.updated', { id: 'm2', status: 'failed', failure_reason: 'HTTP 500: down' }, 'c1'), 'c1')
    expect(t[1]).toMatchObject({ status: 'failed', failure_reason: 'HTTP 500: down' })
    t = applyThreadEvent(t, event('message.updated', { id: 'm2', status: 'queued', failure_reason: '' }, 'c1'), 'c1')
    t = applyThreadEvent(t, event('message.updated', { id: 'm2', status: 'sent', provider_id: 'p-1' }, 'c1'), 'c1')
    expect(t[1]).toMatchObject({ status: 'sent', failure_reason: '' })
  })

  it('replaces an attachment that finished downloading', () => {
    const withFile = [message('m1', 'c1', { attachments: [{ id: 'a1', message_id: 'm1', conversation_id: 'c1', filename: 'x.png', content_type: 'image/png', size: 0, status: 'pending', created_at: '' }] })]
    const t = applyThreadEvent(withFile, event('attachment.updated', { id: 'a1', status: 'stored', size: 1234 }, 'c1'), 'c1')
    expect(t[0]?.attachments?.[0]).toMatchObject({ id: 'a1', status: 'stored', size: 1234, filename: 'x.png' })
  })
})

describe('previewOf', () => {
  it('flattens white space, clips long text by characters, and names the kind of an empty message (as the server)', () => {
    expect(previewOf({ content: ' a\n\n b ', content_type: 'text' })).toBe('a b')
    expect(previewOf({ content: '字'.repeat(140), content_type: 'text' })).toBe('字'.repeat(140))
    expect(previewOf({ content: '字'.repeat(200), content_type: 'text' })).toBe('字'.repeat(140) + '…')
    expect(previewOf({ content: '', content_type: 'image' })).toBe('[image]')
    expect(previewOf({ content: '', content_type: 'text' })).toBe('')
  })
})

describe('canned responses', () => {
  const canned: CannedResponse[] = [
    { id: '1', shortcut: 'thanks', title: 'Thank you', content: 'Thank you, {{contact.first_name}}!' },
    { id: '2', shortcut: 'th', title: 'Short thanks', content: 'Thx' },
    { id: '3', shortcut: 'refund', title: 'Refund policy', content: 'Refunds take 5 days.' },
    { id: '4', shortcut: 'delay', title: 'Shipping delay — thanks for waiting', content: 'Sorry for the wait.' },
    { id: '5', shortcut: 'ORDER', title: 'Order status', content: 'Your order…' },
  ]

  it('finds the "/word" before the caret only at the start or after white space', () => {
    expect(slashToken('/th', 3)).toEqual({ start: 0, end: 3, query: 'th' })
    expect(slashToken('Hello /ref', 10)).toEqual({ start: 6, end: 10, query: 'ref' })
    expect(slashToken('Hello\n/', 7)).toEqual({ start: 6, end: 7, query: '' })
    expect(slashToken('see https://x.test/ref', 22)).toBeNull()
    expect(slashToken('on 1/2', 6)).toBeNull()
    expect(slashToken('/refund done', 12)).toBeNull()
    // The caret decides, not the end of the text.
    expect(slashToken('/ref later', 3)).toEqual({ start: 0, end: 3, query: 're' })
  })

  it('offers shortcuts starting with the query first (shortest first), then containing it, then titles', () => {
    expect(matchCanned(canned, 'th').map((c) => c.shortcut)).toEqual(['th', 'thanks', 'delay'])
    expect(matchCanned(canned, 'order').map((c) => c.shortcut)).toEqual(['ORDER'])
    expect(matchCanned(canned, 'fun').map((c) => c.shortcut)).toEqual(['refund'])
    expect(matchCanned(canned, '').map((c) => c.shortcut)).toEqual(['th', 'delay', 'ORDER', 'refund', 'thanks'])
    expect(matchCanned(canned, '', 2)).toHaveLength(2)
    expect(matchCanned(canned, 'zzz')).toEqual([])
  })

  it('replaces the token with the rendered text and puts the caret after it', () => {
    const text = 'Hi! /tha and more'
    const token = slashToken(text, 8)
    expect(token).not.toBeNull()
    expect(insertCanned(text, token!, 'Thank you, Li!')).toEqual({ text: 'Hi! Thank you, Li! and more', caret: 18 })
  })
})

describe('keyboard shortcuts', () => {
  const key = (k: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; altKey: boolean }> = {}) => ({
    key: k,
    ctrlKey: false,
    metaKey: false,
    altKey: false,
    ...mods,
  })

  it('maps single keys outside text fields', () => {
    expect(['j', 'k', 'r', 'n', 'e', 'a', '?', 'x'].map((k) => shortcutFor(key(k), false))).toEqual([
      'next',
      'previous',
      'reply',
      'note',
      'resolve',
      'assignToMe',
      'help',
      null,
    ])
  })

  it('leaves letters typed in a field alone, and sends with Ctrl or Cmd + Enter there', () => {
    expect(shortcutFor(key('e'), true)).toBeNull()
    expect(shortcutFor(key('Enter', { ctrlKey: true }), true)).toBe('send')
    expect(shortcutFor(key('Enter', { metaKey: true }), true)).toBe('send')
    expect(shortcutFor(key('Enter'), true)).toBeNull()
    expect(shortcutFor(key('j', { ctrlKey: true }), false)).toBeNull()
  })

  it('walks the list with j and k', () => {
    const list = [conv('a', 3), conv('b', 2), conv('c', 1)]
    expect(neighbour(list, null, 1)).toBe('a')
    expect(neighbour(list, 'a', 1)).toBe('b')
    expect(neighbour(list, 'c', 1)).toBeNull()
    expect(neighbour(list, 'b', -1)).toBe('a')
    expect(neighbour(list, 'gone', -1)).toBe('a')
    expect(neighbour([], null, 1)).toBeNull()
  })
})
