import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { hasSession, onSessionEnded, sessionRole } from '@api/session'

// Every page is its own chunk, so the queue loads no chart or admin code.
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
  {
    path: '/',
    component: () => import('./views/LayoutView.vue'),
    children: [
      { path: '', name: 'home', redirect: { name: 'queue' } },
      { path: 'queue', name: 'queue', component: () => import('./views/QueueView.vue'), meta: { title: '我的工单' } },
      { path: 'cases/:id', name: 'case', component: () => import('./views/CaseView.vue'), props: true, meta: { title: '工单详情' } },
      { path: 'alerts', name: 'alerts', component: () => import('./views/AlertsView.vue'), meta: { title: '紧急告警', roles: ['worker', 'station_head', 'supervisor', 'admin'] } },
      { path: 'dispatch', name: 'dispatch', component: () => import('./views/DispatchView.vue'), meta: { title: '派单队列', roles: ['supervisor', 'admin'] } },
      { path: 'dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue'), meta: { title: '绩效看板', roles: ['supervisor', 'admin'] } },
      { path: 'volunteers', name: 'volunteers', component: () => import('./views/VolunteersView.vue'), meta: { title: '志愿服务', roles: ['worker', 'station_head', 'supervisor', 'admin'] } },
      { path: 'plan', name: 'plan', component: () => import('./views/PlanView.vue'), meta: { title: '规划指标', roles: ['supervisor', 'admin'] } },
      { path: 'visits', name: 'visits', component: () => import('./views/VisitsView.vue'), meta: { title: '探访关爱' } },
      { path: 'visits/tier-rules', name: 'tier-rules', component: () => import('./views/TierRulesView.vue'), meta: { title: '探访频次规则', roles: ['worker', 'station_head', 'supervisor', 'admin'] } },
      { path: 'admin/stations', name: 'stations', component: () => import('./views/StationsView.vue'), meta: { title: '社工站', roles: ['admin', 'supervisor'] } },
      { path: 'network', name: 'network', component: () => import('./views/NetworkView.vue'), meta: { title: '社工站建设', roles: ['supervisor', 'admin'] } },
      { path: 'admin/clients', name: 'clients', component: () => import('./views/ClientsView.vue'), meta: { title: '接入客户端', roles: ['admin'] } },
      { path: 'admin/catalogue', name: 'catalogue', component: () => import('./views/CatalogueView.vue'), meta: { title: '服务目录' } },
      { path: 'admin/staff', name: 'staff', component: () => import('./views/StaffView.vue'), meta: { title: '工作人员', roles: ['admin'] } },
    ],
  },
  { path: '/:pathMatch(.*)*', redirect: { name: 'queue' } },
]

export const router = createRouter({ history: createWebHistory('/console/'), routes })

router.beforeEach((to) => {
  if (!to.meta.public && !hasSession()) return { name: 'login', query: { redirect: to.fullPath } }
  const roles = to.meta.roles as string[] | undefined
  if (roles && !roles.includes(sessionRole() ?? '')) return { name: 'queue' }
  return true
})

router.afterEach((to) => {
  const title = (to.meta.title as string | undefined) ?? '登录'
  document.title = `${title} · 惠民工作台`
})

// The refresh token is spent or revoked: back to the login page, then back here after.
onSessionEnded(() => {
  const here = router.currentRoute.value
  if (here.name !== 'login') void router.push({ name: 'login', query: { redirect: here.fullPath } })
})
