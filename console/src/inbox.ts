// The inbox's pure logic: which conversations a view shows, how live events change the list and
// the open thread, canned responses typed as "/shortcut", and the keyboard shortcuts. Nothing
// here touches Vue or the network, so tests/inbox.test.ts covers it directly.
import type { CannedResponse, Conversation, ConversationQuery, ConversationStatus, Message, RealtimeEvent } from './types'

export const STATUSES: readonly ConversationStatus[] = ['open', 'pending', 'snoozed', 'resolved', 'closed']
export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const
export const TYPES = ['service', 'complaint', 'sales', 'field'] as const

/** Which conversations a list shows; '' means "any". */
export interface InboxView {
  /** me, none (unassigned) or '' (everyone's). */
  assignee: '' | 'me' | 'none'
  /** One status, or '' for every status but closed (as the server reads it). */
  status: '' | ConversationStatus
  channel_id: string
  contact_id: string
  tag: string
}

export const EMPTY_VIEW: InboxView = { assignee: '', status: '', channel_id: '', contact_id: '', tag: '' }

export function viewQuery(view: InboxView): ConversationQuery {
  return {
    assignee: view.assignee || undefined,
    status: view.status || undefined,
    channel_id: view.channel_id || undefined,
    contact_id: view.contact_id || undefined,
    tag: view.tag.trim().toLowerCase() || undefined,
  }
}

/** The server's filter, repeated here so a live change can move a conversation in or out of a view. */
export function matchesView(c: Conversation, view: InboxView, me: string): boolean {
  if (view.status ? c.status !== view.status : c.status === 'closed') return false
  if (view.assignee === 'me' && c.assignee_id !== me) return false
  if (view.assignee === 'none' && c.assignee_id) return false
  if (view.channel_id && c.channel_id !== view.channel_id) return false
  if (view.contact_id && c.contact_id !== view.contact_id) return false
  const tag = view.tag.trim().toLowerCase()
  if (tag && !(c.tags ?? []).includes(tag)) return false
  return true
}

/** The inbox order: latest activity first, the id breaking ties (as the server pages it). */
export function compareConversations(a: Conversation, b: Conversation): number {
  const at = Date.parse(b.last_message_at) - Date.parse(a.last_message_at)
  if (at !== 0 && !Number.isNaN(at)) return at
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/** Puts a conversation where the view wants it: replaced or inserted in order, or dropped when it no longer belongs. */
export function upsertConversation(items: Conversation[], c: Conversation, view: InboxView, me: string): Conversation[] {
  const rest = items.filter((x) => x.id !== c.id)
  if (!matchesView(c, view, me)) return rest.length === items.length ? items : rest
  return [...rest, c].sort(compareConversations)
}

export interface ApplyContext {
  view: InboxView
  /** The user's id, for the "mine" view. */
  me: string
  /** The conversation on screen: its new messages are read already. */
  openId: string | null
}

export interface ApplyResult {
  items: Conversation[]
  /** Conversations to fetch whole (new to this list, or changed in ways an event does not say). */
  fetch: string[]
}

function conversationIdOf(ev: RealtimeEvent): string | null {
  if (ev.conversation_id) return ev.conversation_id
  const p = ev.payload as { conversation_id?: unknown } | null
  return p && typeof p.conversation_id === 'string' ? p.conversation_id : null
}

const PREVIEW_RUNES = 140

/** What the list shows of a message, made as the server makes a conversation's preview. */
export function previewOf(m: Pick<Message, 'content' | 'content_type'>): string {
  const text = m.content.replace(/\s+/g, ' ').trim()
  if (!text && m.content_type !== 'text') return `[${m.content_type}]`
  const runes = Array.from(text)
  return runes.length > PREVIEW_RUNES ? runes.slice(0, PREVIEW_RUNES).join('') + '…' : text
}

/**
 * Applies one realtime event to a conversation list. A message moves its conversation to the
 * top with the new preview, and an inbound one counts as unread unless that conversation is
 * open; a conversation.updated applies its changes; whatever the event cannot tell (a
 * conversation this list has not seen, new tags) is named in `fetch` for the caller to load.
 */
export function applyEvent(items: Conversation[], ev: RealtimeEvent, ctx: ApplyContext): ApplyResult {
  const convId = conversationIdOf(ev)
  switch (ev.kind) {
    case 'conversation.created': {
      const c = ev.payload as Conversation | null
      if (!c || typeof c.id !== 'string') return { items, fetch: [] }
      if (items.some((x) => x.id === c.id)) return { items, fetch: [] }
      const normal: Conversation = { ...c, tags: c.tags ?? [], contact_name: c.contact_name ?? '' }
      // The event's payload is the row as created: the contact's name comes with a fetch.
      return { items: upsertConversation(items, normal, ctx.view, ctx.me), fetch: normal.contact_name ? [] : [c.id] }
    }
    case 'message.created': {
      const m = ev.payload as Message | null
      if (!m || !convId || m.private) return { items, fetch: [] }
      const current = items.find((x) => x.id === convId)
      if (!current) return { items, fetch: [convId] }
      const preview = previewOf(m)
      // A conversation fetched after the message was stored (the fetch a conversation.created
      // asks for can overtake this event) already counts it.
      const counted = !!m.created_at && Date.parse(current.last_message_at) === Date.parse(m.created_at) && current.preview === preview
      if (counted) return { items, fetch: [] }
      const next: Conversation = { ...current, preview, last_message_at: m.created_at || ev.at }
      if (m.direction === 'in') {
        if (ctx.openId !== convId) next.unread = current.unread + 1
        // The server reopens a conversation its contact writes to.
        if (next.status !== 'open') {
          next.status = 'open'
          next.snoozed_until = null
          next.resolved_at = null
        }
      } else if (m.direction === 'out') {
        next.unread = 0
      }
      return { items: upsertConversation(items, next, ctx.view, ctx.me), fetch: [] }
    }
    case 'conversation.updated': {
      const p = ev.payload as { id?: string; changes?: Record<string, unknown> } | null
      const id = p?.id ?? convId
      const changes = p?.changes ?? {}
      if (!id) return { items, fetch: [] }
      const current = items.find((x) => x.id === id)
      const reshapes = 'status' in changes || 'assignee_id' in changes || 'tags' in changes
      if (!current) return { items, fetch: reshapes ? [id] : [] }
      const next: Conversation = { ...current }
      let fetch = false
      for (const [key, value] of Object.entries(changes)) {
        switch (key) {
          case 'status': {
            const to = (value as { to?: unknown } | null)?.to ?? value
            if (typeof to === 'string') next.status = to as ConversationStatus
            break
          }
          case 'assignee_id':
            next.assignee_id = typeof value === 'string' && value ? value : null
            break
          case 'unread':
            if (typeof value === 'number') next.unread = value
            break
          case 'priority':
          case 'type':
          case 'team':
          case 'subject':
            if (typeof value === 'string') (next as unknown as Record<string, string>)[key] = value
            break
          default:
            // tags (sent as "changed"), and whatever a newer server adds.
            fetch = true
        }
      }
      return { items: upsertConversation(items, next, ctx.view, ctx.me), fetch: fetch ? [id] : [] }
    }
    default:
      return { items, fetch: [] }
  }
}

/**
 * Whether an event can change how many conversations have unread messages (the badge): a new
 * conversation or customer message, or a change of status, assignee or unread count. Typing,
 * presence, notes and delivery statuses cannot.
 */
export function changesUnreadCounts(ev: RealtimeEvent): boolean {
  switch (ev.kind) {
    case 'conversation.created':
      return true
    case 'message.created':
      return !(ev.payload as Message | null)?.private
    case 'conversation.updated': {
      const changes = (ev.payload as { changes?: Record<string, unknown> } | null)?.changes ?? {}
      return 'status' in changes || 'assignee_id' in changes || 'unread' in changes
    }
    default:
      return false
  }
}

/**
 * Applies an event to the open conversation's thread (oldest first): new messages and notes
 * join once (the answer to our own POST and its event carry the same id), status changes
 * and failures land on their message, attachments that finished downloading replace theirs.
 */
export function applyThreadEvent(messages: Message[], ev: RealtimeEvent, conversationId: string): Message[] {
  if (conversationIdOf(ev) !== conversationId) return messages
  switch (ev.kind) {
    case 'message.created':
    case 'note.created': {
      const m = ev.payload as Message | null
      if (!m || typeof m.id !== 'string') return messages
      return addMessage(messages, m)
    }
    case 'message.updated': {
      const p = ev.payload as { id?: string; status?: string; failure_reason?: string } | null
      if (!p?.id || !messages.some((m) => m.id === p.id)) return messages
      return messages.map((m) =>
        m.id === p.id ? { ...m, status: p.status ?? m.status, failure_reason: p.failure_reason ?? (p.status === 'failed' ? m.failure_reason : '') } : m,
      )
    }
    case 'attachment.updated': {
      const a = ev.payload as { id?: string; message_id?: string | null } | null
      if (!a?.id) return messages
      return messages.map((m) =>
        m.attachments?.some((x) => x.id === a.id)
          ? { ...m, attachments: m.attachments.map((x) => (x.id === a.id ? { ...x, ...(a as object) } : x)) }
          : m,
      )
    }
    default:
      return messages
  }
}

/** Adds or replaces a message, keeping the thread in id order (ids grow with time). */
export function addMessage(messages: Message[], m: Message): Message[] {
  const i = messages.findIndex((x) => x.id === m.id)
  if (i >= 0) {
    const copy = messages.slice()
    copy[i] = { ...messages[i], ...m }
    return copy
  }
  const copy = [...messages, m]
  copy.sort((a, b) => {
    const at = Date.parse(a.created_at) - Date.parse(b.created_at)
    return at !== 0 && !Number.isNaN(at) ? at : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  })
  return copy
}

/**
 * Adds the answer to our own POST (a reply or a note) unless the live stream brought the message
 * first: its events are never older than the answer (a reply may already be "sent" by the time
 * the answer saying "queued" arrives).
 */
export function addAnswer(messages: Message[], m: Message): Message[] {
  return messages.some((x) => x.id === m.id) ? messages : addMessage(messages, m)
}

/** Applies the answer to a manual retry unless an event has already moved the message on from "failed". */
export function applyRetryAnswer(messages: Message[], m: Message): Message[] {
  return messages.map((x) => (x.id === m.id && x.status === 'failed' ? { ...x, ...m, failure_reason: m.failure_reason ?? '' } : x))
}

/** How many conversations have something unread: the number on the navigation's badge. */
export function unreadConversations(items: Conversation[]): number {
  return items.filter((c) => c.unread > 0).length
}

// ——— Canned responses: "/" followed by a shortcut in the reply box. ———

/** The "/shortcut" being typed just before the caret. */
export interface SlashToken {
  start: number
  end: number
  query: string
}

/**
 * Finds the "/word" that ends at the caret, when it starts the text or follows white space
 * (so a URL or a date such as 1/2 never opens the list).
 */
export function slashToken(text: string, caret: number): SlashToken | null {
  const before = text.slice(0, caret)
  const m = /(^|\s)\/([^\s/]*)$/.exec(before)
  if (!m) return null
  const query = m[2] ?? ''
  return { start: caret - query.length - 1, end: caret, query }
}

/**
 * The canned responses offered for a query: shortcuts starting with it first (shortest
 * first), then shortcuts containing it, then titles containing it. Case does not matter.
 */
export function matchCanned(list: CannedResponse[], query: string, limit = 8): CannedResponse[] {
  const q = query.toLowerCase()
  const rank = (c: CannedResponse): number => {
    const s = c.shortcut.toLowerCase()
    if (s.startsWith(q)) return 0
    if (s.includes(q)) return 1
    if (c.title.toLowerCase().includes(q)) return 2
    return -1
  }
  return list
    .map((c) => ({ c, r: rank(c) }))
    .filter((x) => x.r >= 0)
    .sort((a, b) => a.r - b.r || a.c.shortcut.length - b.c.shortcut.length || a.c.shortcut.localeCompare(b.c.shortcut))
    .slice(0, limit)
    .map((x) => x.c)
}

/** Replaces the "/shortcut" token with the response's text; answers the new text and caret. */
export function insertCanned(text: string, token: SlashToken, content: string): { text: string; caret: number } {
  const next = text.slice(0, token.start) + content + text.slice(token.end)
  return { text: next, caret: token.start + content.length }
}

// ——— Keyboard shortcuts. ———

export type ShortcutAction = 'next' | 'previous' | 'reply' | 'note' | 'resolve' | 'assignToMe' | 'help' | 'send'

/** The keys, in the order the help popover lists them. */
export const SHORTCUTS: { keys: string; action: ShortcutAction }[] = [
  { keys: 'j', action: 'next' },
  { keys: 'k', action: 'previous' },
  { keys: 'r', action: 'reply' },
  { keys: 'n', action: 'note' },
  { keys: 'e', action: 'resolve' },
  { keys: 'a', action: 'assignToMe' },
  { keys: '?', action: 'help' },
  { keys: 'Ctrl/⌘ + Enter', action: 'send' },
]

export interface KeyLike {
  key: string
  ctrlKey: boolean
  metaKey: boolean
  altKey: boolean
}

/**
 * The action of a key press. Single letters act only outside text fields (typing "e" in a
 * reply must not resolve the conversation); Ctrl/Cmd+Enter sends from inside one.
 */
export function shortcutFor(e: KeyLike, inField: boolean): ShortcutAction | null {
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') return inField ? 'send' : null
  if (inField || e.ctrlKey || e.metaKey || e.altKey) return null
  switch (e.key) {
    case 'j':
      return 'next'
    case 'k':
      return 'previous'
    case 'r':
      return 'reply'
    case 'n':
      return 'note'
    case 'e':
      return 'resolve'
    case 'a':
      return 'assignToMe'
    case '?':
      return 'help'
    default:
      return null
  }
}

/** The conversation `step` places away from the current one (the first when none is open), or null at either end. */
export function neighbour(items: Conversation[], currentId: string | null, step: 1 | -1): string | null {
  if (items.length === 0) return null
  const i = currentId ? items.findIndex((c) => c.id === currentId) : -1
  if (i < 0) return items[0]?.id ?? null
  return items[i + step]?.id ?? null
}
