import { beforeEach, describe, expect, it } from 'vitest'
import {
  accessToken,
  clearSession,
  hasSession,
  makeAuthFetch,
  onSessionEnded,
  refreshTokens,
  reloadSession,
  saveTokens,
} from './session'

const pair = (n: number, expiresIn = 900) => ({
  access_token: `access-${n}`,
  refresh_token: `refresh-${n}`,
  expires_in: expiresIn,
  refresh_expires_in: 86400,
  role: 'worker',
})

interface Seen { path: string; auth: string | null; body: string }

/** A stand-in server: /me answers 401 unless the token is the newest one; refresh issues the next pair. */
function server(opts: { refreshOk?: boolean } = {}) {
  const seen: Seen[] = []
  let issued = 1
  const fetcher = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname
    seen.push({ path, auth: req.headers.get('Authorization'), body: req.method === 'POST' ? await req.clone().text() : '' })
    if (path === '/api/v1/auth/refresh') {
      if (opts.refreshOk === false) return new Response(JSON.stringify({ code: 'refresh_token_reused' }), { status: 401 })
      issued += 1
      return new Response(JSON.stringify(pair(issued)), { status: 200 })
    }
    if (req.headers.get('Authorization') !== `Bearer access-${issued}`) {
      return new Response(JSON.stringify({ code: 'token_expired' }), { status: 401 })
    }
    return new Response(JSON.stringify({ ok: true, body: req.method === 'POST' ? await req.text() : null }), { status: 200 })
  }
  return { seen, fetcher: fetcher as unknown as typeof fetch, expire: () => (issued += 1) }
}

describe('session', () => {
  beforeEach(() => {
    localStorage.clear()
    reloadSession()
  })

  it('sends the bearer token and keeps it across a reload', async () => {
    const s = server()
    saveTokens(pair(1))
    reloadSession()
    const resp = await makeAuthFetch(s.fetcher)(new Request('http://localhost/api/v1/me'))
    expect(resp.status).toBe(200)
    expect(s.seen[0].auth).toBe('Bearer access-1')
  })

  it('does not loop when the server still says 401 after a refresh', async () => {
    const seen: string[] = []
    const fetcher = (async (req: Request) => {
      const path = new URL(req.url).pathname
      seen.push(path)
      if (path === '/api/v1/auth/refresh') return new Response(JSON.stringify(pair(9)), { status: 200 })
      return new Response('{"code":"token_revoked"}', { status: 401 })
    }) as unknown as typeof fetch
    saveTokens(pair(1))
    const resp = await makeAuthFetch(fetcher)(new Request('http://localhost/api/v1/me'))
    expect(resp.status).toBe(401)
    expect(seen).toEqual(['/api/v1/me', '/api/v1/auth/refresh', '/api/v1/me'])
  })

  it('retries once with the new token and the same body, so the dialog input is not lost', async () => {
    const s = server()
    saveTokens(pair(0)) // the server issued pair 1; ours is stale
    const resp = await makeAuthFetch(s.fetcher)(
      new Request('http://localhost/api/v1/cases/x/note', { method: 'POST', body: '{"text":"上门"}' }),
    )
    expect(resp.status).toBe(200)
    expect(await resp.json()).toEqual({ ok: true, body: '{"text":"上门"}' })
    expect(s.seen[2].auth).toBe('Bearer access-2')
    expect(accessToken()).toBe('access-2')
  })

  it('refreshes before sending when the access token is about to expire', async () => {
    const s = server()
    saveTokens(pair(1), Date.now() - 880_000) // 20 s of 900 left: inside the 30 s margin
    await makeAuthFetch(s.fetcher)(new Request('http://localhost/api/v1/me'))
    expect(s.seen.map((x) => x.path)).toEqual(['/api/v1/auth/refresh', '/api/v1/me'])
    expect(s.seen[1].auth).toBe('Bearer access-2')
  })

  it('shares one refresh between concurrent requests (the refresh token is single-use)', async () => {
    const s = server()
    saveTokens(pair(1), Date.now() - 890_000)
    const f = makeAuthFetch(s.fetcher)
    await Promise.all([f(new Request('http://localhost/api/v1/me')), f(new Request('http://localhost/api/v1/cases'))])
    expect(s.seen.filter((x) => x.path === '/api/v1/auth/refresh')).toHaveLength(1)
  })

  it('ends the session when the refresh is refused', async () => {
    const s = server({ refreshOk: false })
    let ended = 0
    onSessionEnded(() => (ended += 1))
    saveTokens(pair(0))
    expect(await refreshTokens(s.fetcher)).toBe(false)
    expect(hasSession()).toBe(false)
    expect(ended).toBe(1)
  })

  it('never sends a token to the login endpoint', async () => {
    const s = server()
    saveTokens(pair(1))
    await makeAuthFetch(s.fetcher)(new Request('http://localhost/api/v1/auth/login', { method: 'POST', body: '{}' }))
    expect(s.seen[0].auth).toBeNull()
    clearSession()
  })
})
