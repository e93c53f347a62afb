import { defineStore } from 'pinia'
import { ref } from 'vue'
import { api, unwrap, type Service } from '@api/client'

/** The service catalogue (current versions), and older versions asked for by cases. */
export const useCatalog = defineStore('catalog', () => {
  const services = ref<Service[]>([])
  const versions = new Map<string, Service>()
  let loading: Promise<void> | null = null

  function load(): Promise<void> {
    loading ??= unwrap(api.GET('/api/v1/services')).then((page) => {
      services.value = page.items ?? []
      for (const s of services.value) versions.set(`${s.code}@${s.version}`, s)
    })
    return loading
  }

  async function get(code: string, version?: number): Promise<Service> {
    const key = `${code}@${version ?? ''}`
    const hit = versions.get(key)
    if (hit) return hit
    const s = await unwrap(
      api.GET('/api/v1/services/{code}', { params: { path: { code }, query: version ? { version } : {} } }),
    )
    versions.set(`${s.code}@${s.version}`, s)
    return s
  }

  function name(code: string | undefined): string {
    return services.value.find((s) => s.code === code)?.name_zh ?? code ?? ''
  }

  return { services, load, get, name }
})
