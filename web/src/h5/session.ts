// The resident's session: log in with a texted code (the mini program logs in with
// wx.login + /api/v1/auth/wechat and gets the same token pair), log out.
import { reactive } from 'vue'
import { api, unwrap } from '@api/client'
import { clearSession, hasSession, onTokensChanged, saveTokens, type TokenPair } from '@api/session'

export const session = reactive({ loggedIn: hasSession() })
onTokensChanged(() => {
  session.loggedIn = hasSession()
})

export async function sendCode(phone: string): Promise<number> {
  const sent = await unwrap(api.POST('/api/v1/auth/otp', { body: { phone } }))
  return sent.expires_in
}

export async function logIn(phone: string, code: string): Promise<void> {
  const pair = await unwrap(api.POST('/api/v1/auth/otp/verify', { body: { phone, code } }))
  saveTokens(pair as TokenPair)
  session.loggedIn = true
}

export async function logOut(): Promise<void> {
  try {
    await api.POST('/api/v1/auth/logout')
  } finally {
    clearSession()
    session.loggedIn = false
  }
}
