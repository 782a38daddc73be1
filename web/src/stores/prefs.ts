import { defineStore } from 'pinia'
import { i18n, setLanguage, type Lang } from '@/i18n'

export type Theme = 'light' | 'dark'
const THEME = 'ld.theme'

function systemTheme(): Theme {
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

function storedTheme(): Theme | null {
  try {
    const t = localStorage.getItem(THEME)
    return t === 'light' || t === 'dark' ? t : null
  } catch {
    return null
  }
}

/** Theme (the system's until the person picks one) and language. */
export const usePrefs = defineStore('prefs', {
  state: () => ({
    theme: storedTheme() ?? systemTheme(),
    themeChosen: storedTheme() !== null,
  }),
  getters: {
    lang: () => i18n.global.locale.value as Lang,
  },
  actions: {
    setTheme(t: Theme) {
      this.theme = t
      this.themeChosen = true
      try {
        localStorage.setItem(THEME, t)
      } catch {
        /* not kept */
      }
      this.apply()
    },
    toggleTheme() {
      this.setTheme(this.theme === 'dark' ? 'light' : 'dark')
    },
    setLang(l: Lang) {
      setLanguage(l)
    },
    apply() {
      document.documentElement.dataset.theme = this.theme
    },
    /** Follows the system's theme while the person has not chosen one. */
    follow() {
      const mq = matchMedia('(prefers-color-scheme: dark)')
      mq.addEventListener?.('change', () => {
        if (!this.themeChosen) {
          this.theme = systemTheme()
          this.apply()
        }
      })
      this.apply()
    },
  },
})
