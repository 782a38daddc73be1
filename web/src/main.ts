import { createApp } from 'vue'
import { createPinia } from 'pinia'
import App from './App.vue'
import { router } from './router'
import { i18n } from './i18n'
import { useToasts, describe } from './stores/toasts'
import { usePrefs } from './stores/prefs'
import './styles/base.css'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia).use(router).use(i18n)

// Nothing fails silently: errors no page caught become a message in the corner.
const toasts = useToasts(pinia)
app.config.errorHandler = (e) => toasts.push('error', describe(e))
window.addEventListener('unhandledrejection', (ev) => {
  if (ev.reason instanceof DOMException && ev.reason.name === 'AbortError') return
  toasts.push('error', describe(ev.reason))
})
usePrefs(pinia).follow()
document.documentElement.lang = i18n.global.locale.value === 'zh' ? 'zh-CN' : 'en'
app.mount('#app')
