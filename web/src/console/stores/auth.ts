import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, unwrap, type Me } from '@api/client'
import { clearSession, saveTokens, sessionRole, type TokenPair } from '@api/session'

export const STAFF_ROLES = ['worker', 'station_head', 'supervisor', 'admin']

export const useAuth = defineStore('auth', () => {
  const me = ref<Me | null>(null)
  const role = computed(() => me.value?.role ?? sessionRole())

  async function login(username: string, password: string): Promise<void> {
    const pair = await unwrap(api.POST('/api/v1/auth/login', { body: { username, password } }))
    if (!STAFF_ROLES.includes(pair.role)) throw new Error('此账号不是工作人员账号。')
    saveTokens(pair as TokenPair)
    await loadMe()
  }

  async function loadMe(): Promise<Me> {
    me.value = await unwrap(api.GET('/api/v1/me'))
    return me.value
  }

  async function logout(): Promise<void> {
    try {
      await api.POST('/api/v1/auth/logout')
    } finally {
      clearSession()
      me.value = null
    }
  }

  return { me, role, login, loadMe, logout }
})
