// Pages load on demand (one chunk each), so the first screen carries only the home page.
import { createRouter, createWebHistory } from 'vue-router'
import { hasSession, onSessionEnded } from '@api/session'
import HomeView from './views/HomeView.vue'

export const router = createRouter({
  history: createWebHistory('/h5/'),
  scrollBehavior: () => ({ top: 0 }),
  routes: [
    { path: '/', component: HomeView, meta: { title: '惠民服务', tab: 'home' } },
    { path: '/login', component: () => import('./views/LoginView.vue'), meta: { title: '登录' } },
    { path: '/scenarios/:code', component: () => import('./views/ScenarioView.vue'), meta: { title: '服务', tab: 'home' } },
    { path: '/services/:code', component: () => import('./views/ServiceView.vue'), meta: { title: '服务说明', tab: 'home' } },
    { path: '/services/:code/apply', component: () => import('./views/ApplyView.vue'), meta: { title: '填写申请', auth: true } },
    { path: '/cases', component: () => import('./views/CasesView.vue'), meta: { title: '我的办件', auth: true, tab: 'cases' } },
    { path: '/cases/:id', component: () => import('./views/CaseView.vue'), meta: { title: '办件详情', auth: true, tab: 'cases' } },
    { path: '/inbox', component: () => import('./views/InboxView.vue'), meta: { title: '消息', auth: true, tab: 'inbox' } },
    { path: '/volunteer', component: () => import('./views/volunteer/VolunteerView.vue'), meta: { title: '志愿服务', tab: 'me' } },
    { path: '/volunteer/register', component: () => import('./views/volunteer/RegisterView.vue'), meta: { title: '注册志愿者', auth: true } },
    { path: '/volunteer/activities', component: () => import('./views/volunteer/ActivitiesView.vue'), meta: { title: '找活动', tab: 'me' } },
    { path: '/volunteer/activities/:id', component: () => import('./views/volunteer/ActivityView.vue'), meta: { title: '志愿活动', tab: 'me' } },
    { path: '/volunteer/signups', component: () => import('./views/volunteer/SignupsView.vue'), meta: { title: '我的活动', auth: true, tab: 'me' } },
    { path: '/volunteer/checkin', component: () => import('./views/volunteer/CheckinView.vue'), meta: { title: '签到签退', auth: true } },
    { path: '/volunteer/record', component: () => import('./views/volunteer/RecordView.vue'), meta: { title: '服务记录', auth: true, tab: 'me' } },
    { path: '/volunteer/certificates', component: () => import('./views/volunteer/CertificatesView.vue'), meta: { title: '志愿服务证明', auth: true, tab: 'me' } },
    { path: '/me', component: () => import('./views/MeView.vue'), meta: { title: '我的', tab: 'me' } },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
})

router.beforeEach((to) => {
  if (to.meta.auth && !hasSession()) return { path: '/login', query: { redirect: to.fullPath } }
  return true
})

router.afterEach((to) => {
  document.title = `${(to.meta.title as string) ?? '惠民服务'} · 惠民服务`
})

onSessionEnded(() => {
  const here = router.currentRoute.value
  if (here.meta.auth) void router.push({ path: '/login', query: { redirect: here.fullPath } })
})
