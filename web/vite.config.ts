// One Vite project, one app per build: APP=console (default) builds src/console into
// dist/console, served by the backend at /console/; APP=h5 builds the resident app in
// src/h5 into dist/h5, served at /h5/. Each app's UI library is imported per component
// (unplugin-vue-components with its resolver), so a page loads only what it draws.
import { fileURLToPath, URL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import { VantResolver } from '@vant/auto-import-resolver'

const APPS: Record<string, { base: string }> = {
  console: { base: '/console/' },
  h5: { base: '/h5/' },
}
const app = process.env.APP ?? 'console'
if (!(app in APPS)) throw new Error(`unknown APP ${app}`)
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

/** Write a .gz next to every JS/CSS asset; aiohttp's FileResponse sends it to gzip clients. */
function precompress(outDir: string): Plugin {
  return {
    name: 'huimin-precompress',
    apply: 'build',
    closeBundle() {
      const dir = join(outDir, 'assets')
      for (const name of readdirSync(dir)) {
        if (/\.(js|css|svg)$/.test(name)) writeFileSync(join(dir, name + '.gz'), gzipSync(readFileSync(join(dir, name)), { level: 9 }))
      }
    },
  }
}

/**
 * Vant's icon font names a copy on a CDN after its inline (data:) one; browsers may still
 * ask the CDN, which the CSP refuses and a resident's phone should never be sent to.
 * Keep the inline font only.
 */
function inlineIconFontOnly(): Plugin {
  return {
    name: 'huimin-inline-icon-font',
    enforce: 'pre',
    transform(code, id) {
      if (!/[\\/]vant[\\/].*\.css$/.test(id.split('?')[0])) return null
      return code.replace(/,\s*url\(["']?(https?:)?\/\/[^)]*\)\s*format\([^)]*\)/g, '')
    },
  }
}

export default defineConfig(({ mode }) => {
  const outDir = here(`./dist/${app}`)
  return {
    root: here(`./src/${app}`),
    base: APPS[app].base,
    publicDir: false,
    resolve: {
      alias: { '@api': here('./src/api'), '@console': here('./src/console'), '@h5': here('./src/h5') },
    },
    plugins: [
      inlineIconFontOnly(),
      vue(),
      Components({
        dts: false,
        dirs: [],
        // Vitest renders components of both apps, so both resolvers are on in test mode.
        resolvers: [
          ...(app === 'console' || mode === 'test' ? [ElementPlusResolver({ importStyle: 'css' })] : []),
          ...(app === 'h5' || mode === 'test' ? [VantResolver({ importStyle: 'css' })] : []),
        ],
      }),
      ...(mode === 'test' ? [] : [precompress(outDir)]),
    ],
    build: {
      outDir,
      emptyOutDir: true,
      assetsDir: 'assets',
      chunkSizeWarningLimit: 1200,
      modulePreload: { polyfill: false },
    },
    server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
    test: {
      root: here('.'),
      environment: 'jsdom',
      include: ['src/**/*.test.ts'],
      server: { deps: { inline: ['element-plus', 'vant'] } },
    },
  }
})
