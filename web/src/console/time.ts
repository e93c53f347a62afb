// Deadlines as people read them: 剩 3小时20分 / 超期 1天2小时, and dates in Beijing time.

export interface Countdown {
  text: string
  overdue: boolean
  soon: boolean // under two hours left
}

export function countdown(due: string | null | undefined, now: number): Countdown | null {
  if (!due) return null
  const ms = Date.parse(due) - now
  const overdue = ms < 0
  let minutes = Math.floor(Math.abs(ms) / 60_000)
  const days = Math.floor(minutes / 1440)
  minutes -= days * 1440
  const hours = Math.floor(minutes / 60)
  minutes -= hours * 60
  const parts = days ? `${days}天${hours}小时` : hours ? `${hours}小时${minutes}分` : `${minutes}分`
  return { text: overdue ? `超期 ${parts}` : `剩 ${parts}`, overdue, soon: !overdue && ms < 2 * 3600_000 }
}

const FORMAT = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
})

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : FORMAT.format(d)
}

/** A <input type=datetime-local> value (Beijing time) as an ISO instant with +08:00. */
export function localToIso(value: string): string {
  return value.length === 16 ? `${value}:00+08:00` : value
}
