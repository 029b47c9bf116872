import autocannon from 'autocannon'
let n = 0
const r = await autocannon({ url: 'http://127.0.0.1:8111', connections: 32, duration: 8, requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/api/products/?limit=20&min_price=${n++}` }) }] })
console.log('rps', r.requests.average, 'p50', r.latency.p50, 'p99', r.latency.p99, 'non2xx', r.non2xx)
