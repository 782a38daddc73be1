import { createI18n } from 'vue-i18n'
import en from './locales/en'
import zh from './locales/zh'

export const LANGUAGES = ['en', 'zh'] as const
export type Lang = (typeof LANGUAGES)[number]
const STORAGE = 'ld.lang'

/** `?lang=` first, then the stored choice, then the browser's language. */
export function pickLanguage(search: string, stored: string | null, browser: readonly string[]): Lang {
  const q = new URLSearchParams(search).get('lang')
  for (const c of [q, stored, ...browser]) {
    if (!c) continue
    const l = c.toLowerCase()
    if (l.startsWith('zh')) return 'zh'
    if (l.startsWith('en')) return 'en'
  }
  return 'en'
}

function storedLang(): string | null {
  try {
    return localStorage.getItem(STORAGE)
  } catch {
    return null
  }
}

export const i18n = createI18n({
  legacy: false,
  locale: pickLanguage(location.search, storedLang(), navigator.languages ?? [navigator.language]),
  fallbackLocale: 'en',
  messages: { en, zh },
})

export function setLanguage(lang: Lang): void {
  i18n.global.locale.value = lang
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
  try {
    localStorage.setItem(STORAGE, lang)
  } catch {
    /* not kept */
  }
}
