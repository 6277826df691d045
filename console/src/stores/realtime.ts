import { computed, ref } from 'vue'
import { defineStore } from 'pinia'
import { api } from '../api'
import { applyEvent, changesUnreadCounts, EMPTY_VIEW, matchesView, unreadConversations, upsertConversation, type InboxView } from '../inbox'
import { RealtimeClient, realtimeUrl, type RealtimeStatus } from '../realtime'
import type { Conversation, RealtimeEvent, UnreadCounts } from '../types'
import { useSessionStore } from './session'

/** What a page wants to hear from the live connection. */
export interface RealtimeListener {
  event?(ev: RealtimeEvent): void
  /** Every 5 s while disconnected: reload what is on screen. */
  poll?(): void
  /** The connection came back after a drop: reload what was polled, the replay fills the rest. */
  resync?(): void
}

/** How many conversations the overview holds: the latest, kept current by events. */
const OVERVIEW_SIZE = 100
const TYPING_EVERY_MS = 3_000
/** The unread counts are asked again at most this often while events come in. */
const COUNTS_EVERY_MS = 300

/**
 * The one realtime connection of the console: the inbox subscribes to its events, and the
 * navigation's badge reads the server's unread counts, asked again after events (until they
 * first arrive, the count of the overview: the latest conversations that are not closed).
 */
export const useRealtimeStore = defineStore('realtime', () => {
  const session = useSessionStore()
  const status = ref<RealtimeStatus>('idle')
  const overview = ref<Conversation[]>([])
  /** The conversation open in the inbox: its new messages are read already. */
  const openId = ref<string | null>(null)
  const listeners = new Set<RealtimeListener>()
  let client: RealtimeClient | null = null
  let pollTimer: ReturnType<typeof setInterval> | null = null
  let connectedOrg: string | null = null
  const fetching = new Set<string>()
  const typingSent = new Map<string, number>()

  const me = () => session.me?.user.id ?? ''

  const counts = ref<UnreadCounts | null>(null)
  let countsTimer: ReturnType<typeof setTimeout> | null = null
  /** Numbers the requests for counts: only the newest answer counts, and none after stop(). */
  let countsSeq = 0

  /** Conversations with unread messages in a view (mine, unassigned, …) of the overview. */
  function unreadIn(view: InboxView): number {
    return overview.value.filter((c) => c.unread > 0 && matchesView(c, view, me())).length
  }

  /** Conversations with unread messages: all, the agent's, the unassigned ones. */
  const unreadCounts = computed<UnreadCounts>(
    () =>
      counts.value ?? {
        all: unreadConversations(overview.value),
        mine: unreadIn({ ...EMPTY_VIEW, assignee: 'me' }),
        unassigned: unreadIn({ ...EMPTY_VIEW, assignee: 'none' }),
      },
  )
  const unread = computed(() => unreadCounts.value.all)

  async function loadCounts(): Promise<void> {
    const seq = ++countsSeq
    try {
      const c = await api.unreadCounts()
      if (seq === countsSeq) counts.value = c
    } catch {
      // The badge is a hint: it stays as it was until the next event or poll.
    }
  }

  /** Asks for the counts again soon: once for a burst of events, however busy the inbox. */
  function refreshCounts(): void {
    if (countsTimer) return
    countsTimer = setTimeout(() => {
      countsTimer = null
      void loadCounts()
    }, COUNTS_EVERY_MS)
  }

  async function loadOverview(): Promise<void> {
    void loadCounts()
    try {
      const page = await api.conversations({ limit: OVERVIEW_SIZE })
      overview.value = page.items
    } catch {
      // The badge is a hint: it stays as it was until the next event or poll.
    }
  }

  function fetchMissing(ids: string[]): void {
    for (const id of ids) {
      if (fetching.has(id)) continue
      fetching.add(id)
      api
        .conversation(id)
        .then((c) => {
          overview.value = upsertConversation(overview.value, c, EMPTY_VIEW, me())
        })
        .catch(() => {})
        .finally(() => fetching.delete(id))
    }
  }

  function handle(ev: RealtimeEvent): void {
    const r = applyEvent(overview.value, ev, { view: EMPTY_VIEW, me: me(), openId: openId.value })
    overview.value = r.items
    fetchMissing(r.fetch)
    if (changesUnreadCounts(ev)) refreshCounts()
    for (const l of listeners) l.event?.(ev)
  }

  function poll(): void {
    void loadOverview()
    for (const l of listeners) l.poll?.()
  }

  function connect(org: string, live: boolean): void {
    connectedOrg = org
    void loadOverview()
    if (!live) {
      // Reading the inbox without the live stream (an analyst): polling is all there is.
      status.value = 'closed'
      pollTimer = setInterval(poll, 5_000)
      return
    }
    client = new RealtimeClient({
      // A WebSocket carries no custom headers: the organisation goes in the query.
      url: (since) => realtimeUrl(window.location, since, { org }),
      onEvent: handle,
      onPoll: poll,
      onResync: () => {
        void loadOverview()
        for (const l of listeners) l.resync?.()
      },
      // Logged out or no longer allowed: /me says which, and sync() follows it.
      onAuthLost: () => void session.loadMe().catch(() => {}),
      onStatus: (s) => (status.value = s),
    })
    client.start()
  }

  /** Connects for the current organisation when the user may read the inbox; otherwise disconnects. */
  function sync(): void {
    const org = session.me?.current_org
    const wanted = org && org.kind === 'tenant' && session.can('conversations:read') ? org.id : null
    const live = session.can('realtime:subscribe')
    if (wanted === connectedOrg && live === (client !== null)) return
    stop()
    if (wanted) connect(wanted, live)
  }

  function stop(): void {
    client?.stop()
    client = null
    if (pollTimer) clearInterval(pollTimer)
    pollTimer = null
    connectedOrg = null
    overview.value = []
    counts.value = null
    countsSeq++ // an answer still on its way belongs to the organisation left behind
    if (countsTimer) clearTimeout(countsTimer)
    countsTimer = null
    status.value = 'idle'
  }

  function subscribe(listener: RealtimeListener): () => void {
    listeners.add(listener)
    return () => listeners.delete(listener)
  }

  /** Tells the others that the agent is typing in a conversation, at most every few seconds. */
  function sendTyping(conversationId: string): void {
    const now = Date.now()
    if (now - (typingSent.get(conversationId) ?? 0) < TYPING_EVERY_MS) return
    if (client?.send({ type: 'typing', conversation_id: conversationId })) typingSent.set(conversationId, now)
  }

  /** Puts a conversation the inbox loaded or changed into the overview too. */
  function remember(c: Conversation): void {
    overview.value = upsertConversation(overview.value, c, EMPTY_VIEW, me())
    refreshCounts()
  }

  return { status, overview, openId, unread, unreadCounts, sync, stop, subscribe, sendTyping, remember, loadOverview }
})
