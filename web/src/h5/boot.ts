// Imported first by main.ts: the resident's session lives under its own key, chosen before
// any module reads it (ES modules run in import order).
import { useSessionKey } from '@api/session'

useSessionKey('huimin.h5.session')
