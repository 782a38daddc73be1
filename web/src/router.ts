import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'

// Every page is its own chunk. The server answers a browser navigation to each path with
// index.html (crates/server/src/pages.rs, `PAGES`: keep the two lists in step).
export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'dashboard', component: () => import('./pages/DashboardPage.vue') },
  { path: '/models', name: 'models', component: () => import('./pages/ModelsPage.vue') },
  { path: '/models/:id(.*)', name: 'model', component: () => import('./pages/ModelDetailsPage.vue') },
  { path: '/chat', name: 'chat', component: () => import('./pages/ChatPage.vue') },
  { path: '/download', name: 'download', component: () => import('./pages/DownloadPage.vue') },
  { path: '/bench', name: 'bench', component: () => import('./pages/BenchPage.vue') },
  { path: '/settings', name: 'settings', component: () => import('./pages/SettingsPage.vue') },
  { path: '/logs', name: 'logs', component: () => import('./pages/LogsPage.vue') },
  { path: '/:pathMatch(.*)*', name: 'not-found', component: () => import('./pages/NotFoundPage.vue') },
]

export const router = createRouter({
  history: createWebHistory(),
  routes,
  scrollBehavior: () => ({ top: 0 }),
})
