import { createApp } from 'vue'
import { useSessionKey } from '@api/session'
import 'vant/es/toast/style/index'
import 'vant/es/dialog/style/index'
import App from './App.vue'
import { router } from './router'
import { applyPrefs } from './prefs'
import './style.css'

useSessionKey('huimin.h5.session')
applyPrefs()
createApp(App).use(router).mount('#app')
