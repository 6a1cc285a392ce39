// render.mjs renders many Mermaid diagrams in one headless Chromium page
// with the pinned Mermaid library (the one mermaid-cli uses), loading it
// once instead of once per diagram as mmdc does:
//
//   node render.mjs OUTDIR FILE.mmd...
//
// Each FILE.mmd is parsed and rendered by mermaid.render(); its SVG is
// written to OUTDIR/FILE.svg. A diagram Mermaid cannot parse or render is
// reported with its file name, and the exit status is 1.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import puppeteer from 'puppeteer'

const require = createRequire(import.meta.url)
const here = path.dirname(new URL(import.meta.url).pathname)
const config = JSON.parse(fs.readFileSync(path.join(here, 'puppeteer-config.json'), 'utf8'))
const mermaidJS = path.join(path.dirname(require.resolve('mermaid')), 'mermaid.js')

const [outDir, ...files] = process.argv.slice(2)
if (!outDir || files.length === 0) {
  console.error('usage: node render.mjs OUTDIR FILE.mmd...')
  process.exit(2)
}
const browser = await puppeteer.launch({ ...config, headless: true })
let failed = 0
try {
  const page = await browser.newPage()
  await page.setContent('<!doctype html><html><body><div id="c"></div></body></html>')
  await page.addScriptTag({ path: mermaidJS })
  await page.evaluate(() => globalThis.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' }))
  for (const [i, file] of files.entries()) {
    const text = fs.readFileSync(file, 'utf8')
    const result = await page.evaluate(async (text, id) => {
      try {
        await globalThis.mermaid.parse(text)
        const { svg } = await globalThis.mermaid.render(id, text)
        return { svg }
      } catch (e) {
        return { error: String(e && e.message ? e.message : e) }
      }
    }, text, `d${i}`)
    if (result.error) {
      failed++
      console.error(`${file}: ${result.error}`)
      continue
    }
    fs.writeFileSync(path.join(outDir, path.basename(file).replace(/\.mmd$/, '') + '.svg'), result.svg)
  }
} finally {
  await browser.close()
}
console.log(`${files.length - failed} rendered, ${failed} failed`)
process.exit(failed ? 1 : 0)
