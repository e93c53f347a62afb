// The filing draft, kept on the device until it is sent: what the resident typed, where,
// the uploaded photos, and the Idempotency-Key of this filing. The key is made once per
// draft and kept, so a retry after a lost connection (even after closing the page) sends
// the same key and the server makes one case.

export interface Draft {
  serviceCode: string
  values: Record<string, string | string[]>
  address: string
  contact: { name: string; phone: string }
  window: { start: string; end: string }
  place: { kind: 'none' } | { kind: 'gps'; lon: number; lat: number } | { kind: 'township'; code: string; name: string }
  photos: Array<{ id: string; name: string }>
  anonymous: boolean
  idempotencyKey: string
  savedAt: number
}

const PREFIX = 'huimin.h5.draft.'

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null
  } catch {
    return null
  }
}

export function newKey(): string {
  const c = globalThis.crypto
  if (c?.randomUUID) return c.randomUUID()
  return `k-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

export function emptyDraft(serviceCode: string, values: Draft['values']): Draft {
  return {
    serviceCode,
    values,
    address: '',
    contact: { name: '', phone: '' },
    window: { start: '', end: '' },
    place: { kind: 'none' },
    photos: [],
    anonymous: false,
    idempotencyKey: newKey(),
    savedAt: Date.now(),
  }
}

/** The saved draft for a service, or null (a damaged one is dropped). */
export function loadDraft(serviceCode: string): Draft | null {
  const raw = storage()?.getItem(PREFIX + serviceCode)
  if (!raw) return null
  try {
    const d = JSON.parse(raw) as Draft
    if (d.serviceCode !== serviceCode || typeof d.idempotencyKey !== 'string' || !d.values) throw new Error('bad draft')
    return d
  } catch {
    storage()?.removeItem(PREFIX + serviceCode)
    return null
  }
}

export function saveDraft(d: Draft, now = Date.now()): void {
  storage()?.setItem(PREFIX + d.serviceCode, JSON.stringify({ ...d, savedAt: now }))
}

/** Forget the draft once its case exists. */
export function clearDraft(serviceCode: string): void {
  storage()?.removeItem(PREFIX + serviceCode)
}

/** Drafts not yet sent, newest first (the home page offers to go on with them). */
export function listDrafts(): Draft[] {
  const s = storage()
  if (!s) return []
  const out: Draft[] = []
  for (let i = 0; i < s.length; i++) {
    const key = s.key(i)
    if (!key?.startsWith(PREFIX)) continue
    const d = loadDraft(key.slice(PREFIX.length))
    if (d) out.push(d)
  }
  return out.sort((a, b) => b.savedAt - a.savedAt)
}
