// Runs a flame graph SVG's inline script against a minimal DOM (node, no packages):
// hover, click-zoom, reset and search on the frame named argv[3] and a search for the
// regular expression argv[4]; prints what a browser would show, as JSON.
// usage: node flamegraph_dom.js FILE.svg FRAME REGEX   (test_analyzer.py, when node exists)
'use strict';
const fs = require('fs');
const [file, frameName, regex] = process.argv.slice(2);
const svgText = fs.readFileSync(file, 'utf8');
const script = svgText.match(/<!\[CDATA\[([\s\S]*?)\]\]>/)[1];
const unxml = s => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
  .replace(/&apos;/g, "'").replace(/&amp;/g, '&');

function element(tag, attrs, text) {
  const e = {
    tagName: tag, attrs: Object.assign({}, attrs), style: {}, children: [], listeners: {}, _text: text || '',
    getAttribute(k) { return this.attrs[k]; },
    setAttribute(k, v) { this.attrs[k] = String(v); },
    addEventListener(t, f) { this.listeners[t] = f; },
    querySelector(t) { return this.children.find(c => c.tagName === t) || null; },
    get textContent() { return this._text; },
    set textContent(v) { this._text = v; },
  };
  e.firstChild = { get nodeValue() { return e._text; }, set nodeValue(v) { e._text = v; } };
  return e;
}

const ids = {};
const group = element('g', { id: 'frames' });
ids.frames = group;
for (const id of ['details', 'matched', 'reset', 'search']) ids[id] = element('text', { id }, ' ');
const frames = [];
const rx = /<g><title>([\s\S]*?)<\/title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="\d+" fill="([^"]+)"[^>]*\/><text[^>]*>([\s\S]*?)<\/text><\/g>/g;
for (let m; (m = rx.exec(svgText));) {
  const g = element('g', {});
  g.parentNode = group;
  g.children = [element('title', {}, unxml(m[1])),
    element('rect', { x: m[2], y: m[3], width: m[4], fill: m[5] }), element('text', {}, unxml(m[6]))];
  g.children.forEach(c => { c.parentNode = g; });
  frames.push(g);
}
frames.forEach((g, i) => { g.nextElementSibling = frames[i + 1] || null; });
group.firstElementChild = frames[0];
group.lastElementChild = frames[frames.length - 1];
const width = +svgText.match(/<svg[^>]* width="(\d+)"/)[1];
global.document = { documentElement: { getAttribute: () => width }, getElementById: id => ids[id] };
global.prompt = () => regex;
global.alert = () => {};
eval(script + '\ninit({});');

const name = g => g.info.split('\n')[0];
const state = () => frames.map(g => ({
  name: name(g), x: g.children[1].attrs.x, width: g.children[1].attrs.width,
  shown: g.style.display !== 'none', faded: !!g.style.opacity, text: g.children[2].textContent,
}));
const target = frames.find(g => name(g) === frameName);
const out = {};
group.listeners.mouseover({ target: target.children[1] });
out.details = ids.details.textContent;
group.listeners.mouseout({});
out.after_mouseout = ids.details.textContent;
group.listeners.click({ target: target.children[1] });
out.zoomed = state();
ids.reset.listeners.click();
out.reset = state();
ids.search.listeners.click();
out.matched = ids.matched.textContent;
out.marked = frames.filter(g => g.children[1].attrs.fill === 'rgb(230,0,230)').map(name);
ids.search.listeners.click();
out.cleared = [ids.matched.textContent, frames.filter(g => g.children[1].attrs.fill === 'rgb(230,0,230)').length];
console.log(JSON.stringify(out));
