import { reactive } from 'vue'

// The API key for this browser tab (sessionStorage: gone when the tab closes). `needed` turns
// on when the API answers 401, which shows the login prompt.
const STORAGE = 'ld.apiKey'

function stored(): string {
  try {
    return sessionStorage.getItem(STORAGE) ?? ''
  } catch {
    return ''
  }
}

export const auth = reactive({
  key: stored(),
  needed: false,
  /** What the server said when it refused the key, shown in the prompt. */
  reason: '',
})

export function setKey(key: string): void {
  auth.key = key.trim()
  auth.needed = false
  auth.reason = ''
  try {
    if (auth.key) sessionStorage.setItem(STORAGE, auth.key)
    else sessionStorage.removeItem(STORAGE)
  } catch {
    /* private mode: the key lives in memory only */
  }
}

export function askForKey(reason: string): void {
  auth.needed = true
  auth.reason = reason
}
