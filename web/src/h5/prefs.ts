// 适老化 settings kept on the device: large text and high contrast, applied as classes on <html>.
import { reactive, watch } from 'vue'

const KEY = 'huimin.h5.prefs'

export interface Prefs {
  largeText: boolean
  highContrast: boolean
}

function load(): Prefs {
  try {
    const raw = globalThis.localStorage?.getItem(KEY)
    if (raw) return { largeText: false, highContrast: false, ...(JSON.parse(raw) as Partial<Prefs>) }
  } catch {
    /* fall through to the defaults */
  }
  return { largeText: false, highContrast: false }
}

export const prefs = reactive<Prefs>(load())

export function applyPrefs(root: HTMLElement = document.documentElement): void {
  root.classList.toggle('large-text', prefs.largeText)
  root.classList.toggle('high-contrast', prefs.highContrast)
}

watch(prefs, () => {
  globalThis.localStorage?.setItem(KEY, JSON.stringify(prefs))
  applyPrefs()
})
