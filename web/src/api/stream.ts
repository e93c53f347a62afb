// The staff live feed (/api/v1/stream, Server-Sent Events). EventSource cannot send
// headers, so the access token goes in the query; when the connection drops (also when
// the token expired) it reopens with a fresh token and the last event id, so the server
// replays what was missed without gaps or duplicates.
import { absolute, freshAccessToken } from './session'

export interface FeedMessage {
  id: string
  event_id: string
  type: string
  case_id?: string
  case_number?: string
  station_id?: string
  division?: string
  [key: string]: unknown
}

export class LiveFeed {
  private source: EventSource | null = null
  private lastId: string | null = null
  private stopped = false
  private timer: ReturnType<typeof setTimeout> | null = null
  private delay = 1000

  constructor(
    private onMessage: (m: FeedMessage) => void,
    private onState: (connected: boolean) => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.stopped = false
    const token = await freshAccessToken()
    if (!token || this.stopped) return
    const url = new URL(absolute('/api/v1/stream'))
    url.searchParams.set('access_token', token)
    if (this.lastId) url.searchParams.set('last_event_id', this.lastId)
    const es = new EventSource(url.toString())
    this.source = es
    es.onopen = () => {
      this.delay = 1000
      this.onState(true)
    }
    es.onmessage = (ev: MessageEvent<string>) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId
      try {
        this.onMessage(JSON.parse(ev.data) as FeedMessage)
      } catch {
        /* not JSON: ignore */
      }
    }
    es.onerror = () => {
      // Reopen ourselves (with a fresh token) rather than letting EventSource retry the old URL.
      es.close()
      this.source = null
      this.onState(false)
      if (this.stopped) return
      this.timer = setTimeout(() => void this.start(), this.delay)
      this.delay = Math.min(this.delay * 2, 30_000)
    }
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.source?.close()
    this.source = null
  }
}
