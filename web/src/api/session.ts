// The staff session: the token pair, refreshed transparently before it runs out and
// once more when the server says 401; when the refresh token is spent too, the session
// ends and `onSessionEnded` listeners (the router) send the user to the login page.

export interface TokenPair {
  access_token: string
  refresh_token: string
  expires_in: number
  refresh_expires_in: number
  role: string
}

interface Stored {
  access: string
  refresh: string
  accessExpiresAt: number // epoch ms
  earlyMs: number // refresh this long before accessExpiresAt
  role: string
}

// Each app keeps its own session (a resident and a worker may share one browser).
let KEY = 'huimin.console.session'
// Refresh this long before the access token expires (at most a quarter of its life), so
// no request is sent with a dying token.
const EARLY_MS = 30_000

let state: Stored | null = load()
let refreshing: Promise<boolean> | null = null
const endedListeners: Array<() => void> = []
const changedListeners: Array<() => void> = []

function load(): Stored | null {
  try {
    const raw = globalThis.localStorage?.getItem(KEY)
    return raw ? (JSON.parse(raw) as Stored) : null
  } catch {
    return null
  }
}

function persist(): void {
  if (state) globalThis.localStorage?.setItem(KEY, JSON.stringify(state))
  else globalThis.localStorage?.removeItem(KEY)
  changedListeners.forEach((f) => f())
}

/** Keep this app's session under another storage key (call before the first request). */
export function useSessionKey(key: string): void {
  KEY = key
  state = load()
  refreshing = null
}

export function saveTokens(pair: TokenPair, now = Date.now()): void {
  state = {
    access: pair.access_token,
    refresh: pair.refresh_token,
    accessExpiresAt: now + pair.expires_in * 1000,
    earlyMs: Math.min(EARLY_MS, (pair.expires_in * 1000) / 4),
    role: pair.role,
  }
  persist()
}

export function clearSession(): void {
  state = null
  persist()
}

export function accessToken(): string | null {
  return state?.access ?? null
}

export function hasSession(): boolean {
  return state !== null
}

export function sessionRole(): string | null {
  return state?.role ?? null
}

export function onSessionEnded(f: () => void): void {
  endedListeners.push(f)
}

export function onTokensChanged(f: () => void): void {
  changedListeners.push(f)
}

function endSession(): void {
  state = null
  persist()
  endedListeners.forEach((f) => f())
}

/** Exchange the refresh token once (concurrent callers share the same exchange). */
export function refreshTokens(fetcher: typeof fetch = globalThis.fetch): Promise<boolean> {
  if (refreshing) return refreshing
  const token = state?.refresh
  if (!token) return Promise.resolve(false)
  refreshing = (async () => {
    try {
      const resp = await fetcher(new Request(absolute('/api/v1/auth/refresh'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: token }),
      }))
      if (!resp.ok) {
        // Another tab may have refreshed meanwhile (the token is single-use): take its pair.
        const other = load()
        if (other && other.refresh !== token) {
          state = other
          return true
        }
        endSession()
        return false
      }
      saveTokens((await resp.json()) as TokenPair)
      return true
    } catch {
      return false // network trouble: keep the session, the caller sees its own error
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

export function absolute(path: string): string {
  return new URL(path, globalThis.location?.origin ?? 'http://localhost').toString()
}

const NO_AUTH = [
  '/api/v1/auth/login',
  '/api/v1/auth/refresh',
  '/api/v1/auth/otp',
  '/api/v1/auth/otp/verify',
  '/api/v1/auth/wechat',
]

/**
 * fetch with the bearer token: refreshes shortly before expiry, and once after a 401
 * (then repeats the request with the new token, so whatever the user was doing goes on).
 */
export function makeAuthFetch(base: typeof fetch = (r, i) => globalThis.fetch(r, i)) {
  return async function authFetch(input: Request): Promise<Response> {
    const path = new URL(input.url).pathname
    if (NO_AUTH.includes(path)) return base(input)
    if (state && state.accessExpiresAt - (state.earlyMs ?? EARLY_MS) < Date.now()) await refreshTokens(base)
    const retry = input.clone()
    const first = await base(withToken(input))
    if (first.status !== 401 || !state) return first
    if (!(await refreshTokens(base))) return first
    return base(withToken(retry))
  }
}

function withToken(req: Request): Request {
  const token = accessToken()
  if (!token) return req
  const headers = new Headers(req.headers)
  headers.set('Authorization', `Bearer ${token}`)
  return new Request(req, { headers })
}

/** Make sure the access token is good for a while (the SSE stream carries it in its URL). */
export async function freshAccessToken(): Promise<string | null> {
  if (state && state.accessExpiresAt - (state.earlyMs ?? EARLY_MS) < Date.now()) await refreshTokens()
  return accessToken()
}

/** For tests: forget the in-memory state and read storage again. */
export function reloadSession(): void {
  state = load()
  refreshing = null
}
