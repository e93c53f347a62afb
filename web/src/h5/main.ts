import './boot'
import { createApp } from 'vue'
import 'vant/es/toast/style/index'
import 'vant/es/dialog/style/index'
import App from './App.vue'
import { router } from './router'
import { applyPrefs } from './prefs'
import './style.css'

applyPrefs()
createApp(App).use(router).mount('#app')
