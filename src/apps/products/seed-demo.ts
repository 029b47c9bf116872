/**
 * The demo catalog: `manage seed_demo --products N` and the small catalog development seeds on
 * first start. A category tree of 23 categories (Clothing > Tops > Hoodies, Footwear > Boots, …),
 * products named after their category ("Heritage Merino Wool Sweater"), 1–6 colour × size
 * variants with shop prices, some on sale, stock with its ledger rows, a placeholder image each.
 *
 * Reproducible: product number k under seed s comes out the same whatever the batch size or the
 * number of runs it took (each product draws from a generator seeded with (s, k)); only ids and
 * timestamps differ. Fast: each batch is a handful of INSERT … SELECT FROM unnest(arrays)
 * statements (one parameter per column, whatever the row count) in one transaction, ids made
 * here so rows link without round trips, and a batch is complete when it commits: stock with its
 * 'seed' ledger rows, derived price and search document.
 *
 * A catalog that already has products is refused (CatalogNotEmptyError) unless `force`: then
 * numbering continues after the highest number ending an existing slug, so slugs and SKUs never
 * collide with an earlier run, and the demo categories are reused by slug.
 */
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { rowsOf, type Db } from '../../core/db/index.js'
import { ConflictError } from '../../core/errors.js'
import type { Platform } from '../../core/platform.js'
import type { Storage } from '../../core/storage.js'
import { slugify } from './categories.js'
import { refreshDerived } from './derived-queries.js'

export interface SeedDemoOptions {
  products: number
  /** Store currency of every variant price. */
  currency: string
  /** Same seed, same catalog. */
  seed?: number
  /** Add to a catalog that already has products instead of refusing. */
  force?: boolean
  /** Products per transaction. */
  batchSize?: number
  onProgress?: (done: number, total: number) => void
}

export interface SeedDemoCounts {
  categories_created: number
  products: number
  variants: number
  stock_movements: number
  images: number
  out_of_stock_products: number
  inactive_products: number
  /** Number of the first product of this run (slugs and SKUs end or contain it). */
  first_number: number
}

export class CatalogNotEmptyError extends ConflictError {
  constructor(readonly existing: number) {
    super('catalog_not_empty', `The catalog already has ${existing} product${existing === 1 ? '' : 's'}.`)
  }
}

export const DEFAULT_SEED = 1
/** The development catalog seeded on first start. */
export const FIRST_START_PRODUCTS = 60
const DEFAULT_BATCH = 2_000
/** Serialises first-start seeding across processes starting at once. */
const FIRST_START_LOCK = 724_311_201

// ---------------------------------------------------------------------------------------------
// Vocabulary

type Group = 'apparel' | 'footwear' | 'home' | 'accessories'

/** Products a category sells alike: their nouns, the materials they come in, their price range. */
interface Line {
  nouns: string[]
  /** "Name" (the material attribute is its lower case) or "Name=attribute value". */
  materials: string[]
  /** In whole currency units. */
  price: [number, number]
  /** Colour keys (see COLOURS); the category's when absent. */
  colours?: string[]
  /** Extra product attributes, one value picked for each; the category's when absent. */
  traits?: Record<string, string[]>
  /** Sentences for the description; the category's when absent. */
  features?: string[]
}

interface Leaf {
  slug: string
  name: string
  parent: string
  /** SKU prefix. */
  code: string
  group: Group
  /** How often the category is picked, relative to the others. */
  weight: number
  lines: Line[]
  traits: Record<string, string[]>
  colours: string[]
  sizes?: string[]
  /** Each size up costs this much more (bedding: single < double < king). */
  sizeStep?: number
  features: string[]
  /** Background of its placeholder image. */
  tint: string
}

const BRANCHES: Array<{ slug: string; name: string; parent: string | null }> = [
  { slug: 'clothing', name: 'Clothing', parent: null },
  { slug: 'tops', name: 'Tops', parent: 'clothing' },
  { slug: 'outerwear', name: 'Outerwear', parent: 'clothing' },
  { slug: 'bottoms', name: 'Bottoms', parent: 'clothing' },
  { slug: 'footwear', name: 'Footwear', parent: null },
  { slug: 'home', name: 'Home', parent: null },
  { slug: 'accessories', name: 'Accessories', parent: null },
]

const APPAREL_SIZES = ['XS', 'S', 'M', 'L', 'XL', 'XXL']
const WAIST_SIZES = ['28', '30', '32', '34', '36', '38']
const SHOE_SIZES = ['38', '39', '40', '41', '42', '43', '44', '45', '46']
const FIT = ['regular', 'relaxed', 'slim']

const LEAVES: Leaf[] = [
  {
    slug: 't-shirts', name: 'T-Shirts', parent: 'tops', code: 'TEE', group: 'apparel', weight: 5,
    lines: [
      { nouns: ['T-Shirt', 'Crew Tee', 'V-Neck Tee', 'Pocket Tee'], materials: ['Cotton', 'Organic Cotton', 'Pima Cotton', 'Slub Cotton', 'Linen'], price: [15, 45] },
      { nouns: ['Long Sleeve Tee', 'Henley'], materials: ['Cotton', 'Organic Cotton', 'Merino=merino wool', 'Waffle Cotton=waffle cotton'], price: [29, 79] },
    ],
    traits: { fit: [...FIT, 'oversized'] },
    colours: ['black', 'white', 'navy', 'grey', 'olive', 'sand', 'burgundy', 'sky'], sizes: APPAREL_SIZES,
    features: ['A taped neckline keeps its shape wash after wash.', 'Side seams are set forward so the hem hangs straight.', 'The mid-weight jersey is soft from the first wear.', 'Double-needle stitching at the hem and cuffs.'],
    tint: '#4f6d7a',
  },
  {
    slug: 'hoodies', name: 'Hoodies', parent: 'tops', code: 'HOD', group: 'apparel', weight: 4,
    lines: [
      { nouns: ['Hoodie', 'Zip Hoodie', 'Pullover Hoodie'], materials: ['Cotton', 'Organic Cotton', 'Fleece=cotton fleece', 'Loopback=loopback cotton'], price: [45, 110] },
      { nouns: ['Hoodie', 'Zip Hoodie'], materials: ['Merino Wool', 'Cashmere Blend=cashmere blend'], price: [120, 220] },
    ],
    traits: { fit: [...FIT, 'oversized'] },
    colours: ['black', 'grey', 'navy', 'charcoal', 'forest', 'sand', 'rust'], sizes: APPAREL_SIZES,
    features: ['A double-layer hood with flat drawcords.', 'Ribbed cuffs and hem hold their stretch.', 'A kangaroo pocket with bar-tacked corners.', 'Brushed inside for warmth without bulk.'],
    tint: '#5b5f97',
  },
  {
    slug: 'sweaters', name: 'Sweaters', parent: 'tops', code: 'SWT', group: 'apparel', weight: 3,
    lines: [
      { nouns: ['Sweater', 'Crewneck Sweater', 'Cardigan', 'Rollneck Sweater'], materials: ['Merino Wool', 'Lambswool', 'Cotton Knit=cotton', 'Alpaca=alpaca wool'], price: [60, 160] },
      { nouns: ['Sweater', 'Cardigan', 'Rollneck Sweater'], materials: ['Cashmere'], price: [150, 320] },
    ],
    traits: { fit: FIT },
    colours: ['charcoal', 'navy', 'cream', 'burgundy', 'forest', 'mustard', 'grey'], sizes: APPAREL_SIZES,
    features: ['Fully fashioned shoulders for a clean line.', 'Knitted on a fine gauge that layers under a jacket.', 'Ribbed trims that do not bag out.', 'Warm without weight, and it breathes.'],
    tint: '#8c5e58',
  },
  {
    slug: 'jackets', name: 'Jackets', parent: 'outerwear', code: 'JKT', group: 'apparel', weight: 3,
    lines: [
      {
        nouns: ['Jacket', 'Trucker Jacket', 'Chore Jacket', 'Overshirt'], materials: ['Denim', 'Waxed Cotton', 'Canvas=cotton canvas', 'Corduroy', 'Suede'], price: [79, 260],
        features: ['Two chest pockets and a hidden inside pocket.', 'Metal buttons rated for years of use.', 'Cut long enough to cover a sweater.', 'Softens and takes your shape with wear.'],
      },
      {
        nouns: ['Rain Jacket', 'Puffer Jacket', 'Bomber Jacket', 'Windbreaker'], materials: ['Nylon=recycled nylon', 'Ripstop=nylon ripstop', 'Technical=recycled polyester'], price: [89, 280],
        features: ['Two zipped hand pockets and an inside pocket.', 'A storm flap keeps wind out of the front zip.', 'Packs into its own pocket.', 'Water repellent without PFCs.'],
      },
    ],
    traits: { fit: FIT },
    colours: ['black', 'navy', 'olive', 'tan', 'indigo', 'stone'], sizes: APPAREL_SIZES,
    features: [],
    tint: '#3d5a40',
  },
  {
    slug: 'coats', name: 'Coats', parent: 'outerwear', code: 'COA', group: 'apparel', weight: 2,
    lines: [
      { nouns: ['Coat', 'Overcoat', 'Peacoat'], materials: ['Wool', 'Wool Blend', 'Melton Wool', 'Cashmere Blend=cashmere blend'], price: [179, 480] },
      { nouns: ['Trench Coat', 'Parka', 'Mac'], materials: ['Cotton Gabardine', 'Waxed Cotton', 'Technical=recycled polyester'], price: [149, 420] },
    ],
    traits: { fit: ['regular', 'relaxed', 'oversized'] },
    colours: ['black', 'charcoal', 'navy', 'camel', 'olive'], sizes: APPAREL_SIZES,
    features: ['Fully lined, with a vent at the back.', 'A collar that stands up against the wind.', 'Deep welt pockets, warm to the touch.', 'Long enough to cover a blazer.'],
    tint: '#6b4f3a',
  },
  {
    slug: 'jeans', name: 'Jeans', parent: 'bottoms', code: 'JNS', group: 'apparel', weight: 3,
    lines: [{ nouns: ['Jeans', 'Straight Jeans', 'Tapered Jeans', 'Wide Leg Jeans'], materials: ['Selvedge Denim', 'Stretch Denim', 'Organic Denim', 'Raw Denim'], price: [59, 189] }],
    traits: { fit: ['slim', 'straight', 'tapered', 'loose'] },
    colours: ['indigo', 'black', 'grey', 'sky'], sizes: WAIST_SIZES,
    features: ['Five pockets with copper rivets.', 'A button fly and a chain-stitched hem.', 'Rinsed once so the size stays true.', 'Fades into your own pattern with wear.'],
    tint: '#2b4c7e',
  },
  {
    slug: 'trousers', name: 'Trousers', parent: 'bottoms', code: 'TRS', group: 'apparel', weight: 2,
    lines: [
      {
        nouns: ['Trousers', 'Chinos', 'Cargo Trousers', 'Pleated Trousers'], materials: ['Cotton Twill', 'Linen', 'Wool', 'Ripstop=cotton ripstop', 'Corduroy'], price: [49, 160],
        features: ['A hidden coin pocket and a clean waistband.', 'Garment dyed for a lived-in colour.', 'Cut with room through the thigh.', 'Belt loops wide enough for a proper belt.'],
      },
      {
        nouns: ['Joggers', 'Sweatpants'], materials: ['Cotton Fleece', 'Loopback=loopback cotton', 'Organic Cotton'], price: [39, 95],
        features: ['An elastic waist with a flat drawcord.', 'Ribbed cuffs at the ankle.', 'Deep pockets that hold a phone.', 'Brushed inside for warmth.'],
      },
    ],
    traits: { fit: ['slim', 'straight', 'tapered', 'relaxed'] },
    colours: ['sand', 'navy', 'olive', 'black', 'stone', 'charcoal'], sizes: WAIST_SIZES,
    features: [],
    tint: '#9a8c73',
  },
  {
    slug: 'sneakers', name: 'Sneakers', parent: 'footwear', code: 'SNK', group: 'footwear', weight: 4,
    lines: [
      { nouns: ['Sneaker', 'Court Sneaker', 'High-Top Sneaker', 'Slip-On Sneaker'], materials: ['Leather', 'Suede', 'Canvas'], price: [59, 180], traits: { sole: ['rubber', 'gum rubber', 'cupsole'] } },
      { nouns: ['Runner', 'Trail Runner', 'Running Shoe'], materials: ['Knit=recycled knit', 'Mesh'], price: [79, 190], traits: { sole: ['foam', 'rubber lug', 'carbon plate'] } },
    ],
    traits: {},
    colours: ['white', 'black', 'grey', 'navy', 'sand', 'forest'], sizes: SHOE_SIZES,
    features: ['A cushioned footbed you can take out.', 'Padded collar and tongue for all-day comfort.', 'Laces in two lengths come in the box.', 'Light enough to forget you are wearing them.'],
    tint: '#c05746',
  },
  {
    slug: 'boots', name: 'Boots', parent: 'footwear', code: 'BOT', group: 'footwear', weight: 3,
    lines: [{ nouns: ['Boot', 'Chelsea Boot', 'Hiking Boot', 'Chukka Boot', 'Work Boot'], materials: ['Leather', 'Suede', 'Nubuck', 'Waxed Leather'], price: [120, 340] }],
    traits: { sole: ['rubber', 'lug', 'crepe', 'leather'] },
    colours: ['brown', 'black', 'tan', 'olive'], sizes: SHOE_SIZES,
    features: ['Goodyear welted, so it can be resoled for years.', 'A grippy sole for wet streets and trails.', 'Leather lined and quick to break in.', 'A pull tab at the heel.'],
    tint: '#5c3d2e',
  },
  {
    slug: 'sandals', name: 'Sandals', parent: 'footwear', code: 'SDL', group: 'footwear', weight: 2,
    lines: [{ nouns: ['Sandal', 'Slide', 'Strap Sandal', 'Trail Sandal'], materials: ['Leather', 'Cork', 'Webbing=nylon webbing', 'Suede'], price: [35, 120] }],
    traits: { sole: ['rubber', 'cork', 'foam'] },
    colours: ['tan', 'black', 'brown', 'sand'], sizes: SHOE_SIZES,
    features: ['A contoured footbed that moulds to your foot.', 'Adjustable straps with brass buckles.', 'Dries fast after a swim.', 'Light enough to pack for any trip.'],
    tint: '#d9a55b',
  },
  {
    slug: 'kitchen', name: 'Kitchen', parent: 'home', code: 'KIT', group: 'home', weight: 3,
    lines: [
      {
        nouns: ['Mug', 'Teapot', 'Serving Bowl', 'Dinner Plate Set', 'Pasta Bowl'], materials: ['Stoneware', 'Porcelain', 'Enamel'], price: [12, 90],
        traits: { finish: ['matte', 'glazed', 'speckled'] },
        features: ['Safe in the dishwasher and the microwave.', 'Made in small batches, so no two are quite alike.', 'Stacks neatly in the cupboard.', 'Chip resistant, made for every day.'],
      },
      {
        nouns: ['Skillet', 'Dutch Oven', 'Saucepan'], materials: ['Cast Iron', 'Stainless Steel', 'Carbon Steel'], price: [39, 260], colours: ['black', 'steel'],
        traits: { finish: ['seasoned', 'polished', 'enamelled'] },
        features: ['Works on gas, electric and induction.', 'Goes from the hob into the oven.', 'Heats evenly with no hot spots.', 'A handle that stays cool on the hob.'],
      },
      {
        nouns: ['Cutting Board', 'Salad Servers', 'Pepper Mill'], materials: ['Walnut=walnut wood', 'Oak=oak wood', 'Olive Wood'], price: [19, 95], colours: ['natural'],
        traits: { finish: ['oiled', 'natural'] },
        features: ['Cut from a single piece of wood.', 'Oil it now and then and it lasts for decades.', 'Gentle on knife edges.', 'Each grain pattern is different.'],
      },
      {
        nouns: ['Chef’s Knife', 'French Press', 'Kettle'], materials: ['Stainless Steel', 'Carbon Steel'], price: [29, 180], colours: ['steel', 'black'],
        traits: { finish: ['brushed', 'polished'] },
        features: ['Balanced weight that is easy to handle.', 'Built from parts you can replace.', 'A lifetime guarantee against defects.', 'Easy to take apart and clean.'],
      },
    ],
    traits: {},
    colours: ['white', 'black', 'sage', 'terracotta', 'cream', 'sky'],
    features: [],
    tint: '#7a9e7e',
  },
  {
    slug: 'decor', name: 'Decor', parent: 'home', code: 'DEC', group: 'home', weight: 3,
    lines: [
      { nouns: ['Vase', 'Candle Holder', 'Planter', 'Bowl'], materials: ['Ceramic', 'Glass', 'Brass', 'Marble', 'Terrazzo'], price: [18, 140] },
      { nouns: ['Wall Mirror', 'Picture Frame', 'Wall Shelf'], materials: ['Oak=oak wood', 'Brass', 'Walnut=walnut wood'], price: [19, 260], colours: ['natural', 'black', 'white'] },
      { nouns: ['Table Lamp', 'Floor Lamp'], materials: ['Ceramic', 'Brass', 'Rattan', 'Oak=oak wood'], price: [69, 320], features: ['A fabric shade gives a soft, warm light.', 'Takes any E27 bulb.', 'A braided cable with an inline switch.', 'Looks as good switched off as on.'] },
      { nouns: ['Throw Pillow', 'Rug', 'Storage Basket'], materials: ['Linen', 'Wool', 'Jute', 'Cotton'], price: [25, 240], traits: { weave: ['flat weave', 'chunky knit', 'herringbone', 'plain'] } },
    ],
    traits: { finish: ['matte', 'glazed', 'natural', 'brushed'] },
    colours: ['white', 'black', 'terracotta', 'sage', 'blush', 'mustard'],
    features: ['Hand finished, with small marks that make each one its own.', 'Looks as good on a shelf as on a table.', 'Packed plastic-free in recycled card.', 'Pairs with the rest of the collection.'],
    tint: '#b7695c',
  },
  {
    slug: 'bedding', name: 'Bedding', parent: 'home', code: 'BED', group: 'home', weight: 2,
    lines: [
      { nouns: ['Duvet Cover', 'Sheet Set', 'Pillowcase Pair', 'Fitted Sheet'], materials: ['Cotton Percale', 'Cotton Sateen', 'Linen', 'Washed Linen', 'Flannel=cotton flannel'], price: [39, 189] },
      { nouns: ['Quilt', 'Throw Blanket'], materials: ['Cotton', 'Wool', 'Linen'], price: [59, 249] },
    ],
    traits: { weave: ['percale', 'sateen', 'waffle', 'plain'] },
    colours: ['white', 'cream', 'grey', 'sage', 'blush', 'navy'], sizes: ['Single', 'Double', 'King'], sizeStep: 0.25,
    features: ['Stone washed for a soft, relaxed look.', 'Cool in summer and warm in winter.', 'Finished with neat, flat seams.', 'Gets softer with every wash.'],
    tint: '#8aa1b1',
  },
  {
    slug: 'bags', name: 'Bags', parent: 'accessories', code: 'BAG', group: 'accessories', weight: 3,
    lines: [
      {
        nouns: ['Backpack', 'Tote Bag', 'Weekender Bag', 'Messenger Bag', 'Duffel Bag'], materials: ['Canvas=cotton canvas', 'Leather', 'Nylon=recycled nylon', 'Waxed Canvas'], price: [45, 260],
        traits: { closure: ['zip', 'buckle', 'drawstring', 'magnetic snap'] },
        features: ['A padded sleeve fits a 15-inch laptop.', 'Water resistant, with taped seams.', 'Handles and straps that age well.', 'An outside pocket for your phone and keys.'],
      },
      {
        nouns: ['Crossbody Bag', 'Wallet', 'Card Holder'], materials: ['Leather', 'Suede'], price: [25, 140], colours: ['tan', 'black', 'brown', 'burgundy'],
        traits: { closure: ['zip', 'snap', 'open'] },
        features: ['Holds six cards and a few folded notes.', 'Edges painted and burnished by hand.', 'Slim enough for a front pocket.', 'Full-grain leather that darkens with use.'],
      },
    ],
    traits: {},
    colours: ['black', 'olive', 'navy', 'tan', 'brown', 'grey'],
    features: [],
    tint: '#4b4e6d',
  },
  {
    slug: 'hats', name: 'Hats', parent: 'accessories', code: 'HAT', group: 'accessories', weight: 2,
    lines: [
      { nouns: ['Beanie'], materials: ['Merino Wool', 'Wool', 'Cashmere', 'Cotton Knit=cotton'], price: [19, 89], features: ['A soft rib that does not itch.', 'Turn up the cuff or wear it slouched.', 'Warm without being bulky.'] },
      { nouns: ['Baseball Cap', 'Bucket Hat'], materials: ['Cotton', 'Corduroy', 'Canvas=cotton canvas', 'Wool'], price: [22, 59] },
      { nouns: ['Fedora', 'Panama Hat'], materials: ['Straw', 'Wool Felt'], price: [49, 160], colours: ['natural', 'black', 'tan'] },
      { nouns: ['Flat Cap'], materials: ['Wool', 'Tweed=wool tweed'], price: [35, 95] },
    ],
    traits: {},
    colours: ['black', 'navy', 'grey', 'rust', 'cream', 'olive'], sizes: ['S/M', 'L/XL'],
    features: ['A soft inner band for all-day comfort.', 'Keeps its shape after a rainy day.', 'A classic shape that suits most faces.'],
    tint: '#a4508b',
  },
  {
    slug: 'scarves', name: 'Scarves', parent: 'accessories', code: 'SCF', group: 'accessories', weight: 1,
    lines: [
      { nouns: ['Scarf', 'Wrap', 'Snood'], materials: ['Merino Wool', 'Cashmere', 'Lambswool', 'Alpaca=alpaca wool'], price: [35, 180], features: ['Long enough to wrap twice.', 'Finished with a hand-twisted fringe.', 'Woven on traditional looms.'] },
      { nouns: ['Bandana', 'Neckerchief'], materials: ['Silk', 'Cotton', 'Linen'], price: [19, 79], features: ['Light enough for spring evenings.', 'Hand-rolled edges.', 'Wear it at the neck, in the hair or on a bag.'] },
    ],
    traits: {},
    colours: ['grey', 'camel', 'burgundy', 'navy', 'forest', 'cream'],
    features: [],
    tint: '#c1666b',
  },
]

const COLOURS: Record<string, [name: string, code: string]> = {
  black: ['Black', 'BLK'], white: ['White', 'WHT'], navy: ['Navy', 'NVY'], grey: ['Grey', 'GRY'], charcoal: ['Charcoal', 'CHR'],
  olive: ['Olive', 'OLV'], sand: ['Sand', 'SND'], burgundy: ['Burgundy', 'BRG'], sky: ['Sky Blue', 'SKY'], forest: ['Forest Green', 'FGR'],
  rust: ['Rust', 'RST'], cream: ['Cream', 'CRM'], tan: ['Tan', 'TAN'], brown: ['Brown', 'BRN'], indigo: ['Indigo', 'IND'],
  terracotta: ['Terracotta', 'TER'], sage: ['Sage', 'SAG'], mustard: ['Mustard', 'MUS'], stone: ['Stone', 'STN'], blush: ['Blush Pink', 'BLS'],
  camel: ['Camel', 'CML'], natural: ['Natural', 'NAT'], steel: ['Steel', 'STL'],
}

const ADJECTIVES: Record<Group, string[]> = {
  apparel: ['Classic', 'Essential', 'Everyday', 'Heritage', 'Urban', 'Vintage', 'Modern', 'Relaxed', 'Signature', 'Weekend', 'Original', 'Lightweight', 'Heavyweight', 'Coastal', 'Alpine', 'Nordic', 'Studio', 'Rugged', 'Field'],
  footwear: ['Classic', 'Everyday', 'Urban', 'Vintage', 'Trail', 'City', 'Heritage', 'Minimal', 'Retro', 'Lightweight', 'Rugged', 'Alpine', 'Coastal', 'Original'],
  home: ['Classic', 'Modern', 'Rustic', 'Nordic', 'Minimal', 'Artisan', 'Coastal', 'Handmade', 'Vintage', 'Everyday', 'Studio', 'Heritage'],
  accessories: ['Classic', 'Everyday', 'Urban', 'Heritage', 'Minimal', 'Weekend', 'Travel', 'Vintage', 'Modern', 'Signature', 'Alpine', 'Coastal', 'Field'],
}

const INTROS: Record<Group, string[]> = {
  apparel: [
    'The {name} is cut from {material} for a {fit} fit.',
    'Our {name} pairs soft {material} with a {fit} fit that works every day.',
    'Made from {material}, the {name} has a {fit} fit and clean, simple lines.',
  ],
  footwear: [
    'The {name} is built from {material} on a {sole} sole.',
    'Crafted in {material} with a {sole} sole, the {name} is made for long days on your feet.',
    'A {material} upper on a {sole} sole: the {name} goes from the office to the weekend.',
  ],
  home: [
    'The {name} is made from {material}.',
    'Simple and useful, the {name} is made from {material} to last for years.',
    'Our {name} brings {material} and quiet colour to any room.',
  ],
  accessories: [
    'The {name} is made from {material}.',
    'Made from {material}, the {name} is the finishing touch for every outfit.',
    'An everyday {noun} in {material}, made to be used.',
  ],
}

const CLOSERS: Record<Group, string[]> = {
  apparel: ['Machine wash cold and tumble dry low.', 'Wash inside out with similar colours.', 'Pre-washed, so it keeps its size.'],
  footwear: ['True to size; between sizes, go up.', 'Wipe clean with a damp cloth.', 'Comes with a cotton dust bag.'],
  home: ['Wipe clean with a soft cloth.', 'Arrives gift-ready in a recycled box.', 'Designed in our studio.'],
  accessories: ['Spot clean only.', 'Comes with a cotton dust bag.', 'Designed in our studio.'],
}

const ORIGINS = ['Portugal', 'Italy', 'Turkey', 'India', 'Vietnam', 'Japan', 'Peru', 'Scotland', 'Spain']

// ---------------------------------------------------------------------------------------------
// Deterministic generation

/** A small, fast generator (mulberry32): floats in [0, 1) from a 32-bit state. */
function generator(state: number) {
  let a = state >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1))
  return {
    next,
    int,
    chance: (p: number): boolean => next() < p,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    /** k distinct items, in their original order. */
    sample: <T>(items: readonly T[], k: number): T[] => {
      const chosen = new Set<number>()
      while (chosen.size < Math.min(k, items.length)) chosen.add(Math.floor(next() * items.length))
      return [...chosen].sort((x, y) => x - y).map((i) => items[i]!)
    },
  }
}
type Random = ReturnType<typeof generator>

/** Mixes the seed and the product number into one well-spread 32-bit state. */
function stateFor(seed: number, number: number): number {
  let h = Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul(number, 0xc2b2ae35)
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}

const TOTAL_WEIGHT = LEAVES.reduce((sum, leaf) => sum + leaf.weight, 0)

function pickLeaf(random: Random): Leaf {
  let roll = random.next() * TOTAL_WEIGHT
  for (const leaf of LEAVES) {
    roll -= leaf.weight
    if (roll < 0) return leaf
  }
  return LEAVES[LEAVES.length - 1]!
}

/** A price a shop would print, in minor units: 19.99, 49.95, 120.00, 64.50. */
function shopPrice(random: Random, [min, max]: [number, number]): number {
  return random.int(min, max) * 100 + random.pick([99, 99, 99, 95, 50, 0])
}

/** Rounds up to the next .99 (sale "was" prices, bigger sizes). */
function upToNinetyNine(minor: number): number {
  return Math.ceil((minor + 1) / 100) * 100 - 1
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole)
}

export interface DemoVariant {
  sku: string
  name: string
  attributes: Record<string, string>
  price: number
  compare_at_price: number | null
  on_hand: number
}

export interface DemoProduct {
  number: number
  slug: string
  name: string
  description: string
  /** Slug of its (leaf) category. */
  category: string
  attributes: Record<string, string>
  is_active: boolean
  /** How long ago it was created, spread over a year so "newest" lists look real. */
  age_seconds: number
  variants: DemoVariant[]
  image: { key: string; alt: string }
}

/** Product number `number` of the catalog under `seed`: the same every time. */
export function demoProduct(seed: number, number: number): DemoProduct {
  const random = generator(stateFor(seed, number))
  const leaf = pickLeaf(random)
  const line = random.pick(leaf.lines)
  const noun = random.pick(line.nouns)
  const [materialName, materialValue] = random.pick(line.materials).split('=') as [string, string | undefined]
  const material = materialValue ?? materialName.toLowerCase()
  const adjective = random.chance(0.85) ? random.pick(ADJECTIVES[leaf.group]) : null
  const name = [adjective, materialName, noun].filter(Boolean).join(' ')

  const attributes: Record<string, string> = { material }
  for (const [trait, values] of Object.entries(line.traits ?? leaf.traits)) attributes[trait] = random.pick(values)
  attributes.origin = random.pick(ORIGINS)

  const words = { name, noun: noun.toLowerCase(), ...attributes }
  const description = [
    fill(random.pick(INTROS[leaf.group]), words),
    ...random.sample(line.features ?? leaf.features, random.int(1, 2)),
    random.pick(CLOSERS[leaf.group]),
    `Made in ${attributes.origin}.`,
  ].join(' ')

  // 1–6 variants: a few colours, times a run of neighbouring sizes where the category has sizes.
  const palette = line.colours ?? leaf.colours
  const colourCount = random.int(1, Math.min(3, palette.length))
  const colours = random.sample(palette, colourCount)
  let sizes: Array<string | null> = [null]
  if (leaf.sizes) {
    const count = random.int(1, Math.min(leaf.sizes.length, Math.floor(6 / colourCount)))
    const start = random.int(0, leaf.sizes.length - count)
    sizes = leaf.sizes.slice(start, start + count)
  }

  const basePrice = shopPrice(random, line.price)
  const onSale = random.chance(0.15)
  const saleFactor = 1.2 + random.next() * 0.3
  const soldOut = random.chance(0.08)
  const number6 = String(number).padStart(6, '0')
  const variants: DemoVariant[] = []
  for (const colour of colours) {
    const [colourName, colourCode] = COLOURS[colour]!
    for (const size of sizes) {
      const step = size && leaf.sizeStep ? leaf.sizes!.indexOf(size) * leaf.sizeStep : 0
      const price = step > 0 ? upToNinetyNine(basePrice * (1 + step)) : basePrice
      variants.push({
        sku: [leaf.code, number6, colourCode, ...(size ? [size.toUpperCase().replace(/[^A-Z0-9]/g, '')] : [])].join('-'),
        name: size ? `${colourName} / ${size}` : colourName,
        attributes: size ? { colour: colourName.toLowerCase(), size } : { colour: colourName.toLowerCase() },
        price,
        compare_at_price: onSale ? upToNinetyNine(price * saleFactor) : null,
        // A whole product sold out now and then; otherwise a size runs out here and there.
        on_hand: soldOut || random.chance(0.05) ? 0 : random.int(1, 200),
      })
    }
  }

  return {
    number,
    slug: `${slugify(name.replace(/['’]/g, ''))}-${number}`,
    name,
    description,
    category: leaf.slug,
    attributes,
    is_active: !random.chance(0.03),
    age_seconds: random.int(0, 365 * 86_400),
    variants,
    image: { key: placeholderKey(leaf.slug), alt: name },
  }
}

// ---------------------------------------------------------------------------------------------
// Placeholder images

const placeholderKey = (categorySlug: string) => `demo/${categorySlug}.svg`
const IMAGE_SIDE = 800

/** One small SVG per leaf category: its colour and its name. */
export function demoImages(): Array<{ key: string; body: Buffer; content_type: string }> {
  return LEAVES.map((leaf) => ({
    key: placeholderKey(leaf.slug),
    content_type: 'image/svg+xml',
    body: Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${IMAGE_SIDE}" height="${IMAGE_SIDE}" viewBox="0 0 ${IMAGE_SIDE} ${IMAGE_SIDE}">` +
        `<rect width="100%" height="100%" fill="${leaf.tint}"/>` +
        `<text x="50%" y="50%" dominant-baseline="middle" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="72" fill="#ffffff">${leaf.name}</text>` +
        `<text x="50%" y="92%" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="28" fill="#ffffff" fill-opacity="0.7">demo</text>` +
        `</svg>\n`,
    ),
  }))
}

const imageSizes = new Map(demoImages().map((image) => [image.key, image.body.length]))

/**
 * Stores the placeholders where their keys point (local media or S3). Their content depends only
 * on the category, so writing them again, as every seeding does, changes nothing.
 */
export async function writeDemoImages(storage: Storage): Promise<number> {
  const images = demoImages()
  for (const image of images) await storage.put(image.key, image.body, image.content_type)
  return images.length
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A PostgreSQL array literal, passed as one text parameter and cast (pg and PGlite both take it). */
function arrayLiteral(values: ReadonlyArray<string | number | boolean | null>): string {
  const items = values.map((value) => {
    if (value === null) return 'NULL'
    if (typeof value === 'number') return String(value)
    if (typeof value === 'boolean') return value ? 't' : 'f'
    return `"${value.replace(/["\\]/g, '\\$&')}"`
  })
  return `{${items.join(',')}}`
}

async function countProducts(db: Db): Promise<number> {
  const [row] = rowsOf<{ count: number }>(await db.execute(sql`SELECT count(*)::int AS count FROM products`))
  return row!.count
}

/** The highest number ending a product slug: forced runs number their products after it. */
async function lastNumber(db: Db): Promise<number> {
  const [row] = rowsOf<{ n: string | number }>(
    await db.execute(sql`SELECT coalesce(max(substring(slug from '-([0-9]{1,12})$')::bigint), 0) AS n FROM products`),
  )
  return Number(row!.n)
}

/** Creates the demo tree, keeping categories whose slug exists; answers leaf slug → id and how many were new. */
async function ensureCategories(db: Db): Promise<{ ids: Map<string, string>; created: number }> {
  const levels = [
    BRANCHES.filter((branch) => branch.parent === null),
    BRANCHES.filter((branch) => branch.parent !== null),
    LEAVES.map(({ slug, name, parent }) => ({ slug, name, parent })),
  ]
  let created = 0
  // Parents first, so each level finds its parents' ids by slug.
  for (const level of levels) {
    const result = await db.execute(sql`
      INSERT INTO categories (name, slug, parent_id)
      SELECT t.name, t.slug, p.id
      FROM unnest(${arrayLiteral(level.map((c) => c.name))}::text[], ${arrayLiteral(level.map((c) => c.slug))}::text[],
        ${arrayLiteral(level.map((c) => c.parent))}::text[]) AS t(name, slug, parent)
      LEFT JOIN categories p ON p.slug = t.parent
      ON CONFLICT (slug) DO NOTHING
      RETURNING id`)
    created += rowsOf(result).length
  }
  const rows = rowsOf<{ id: string; slug: string }>(
    await db.execute(sql`SELECT id, slug FROM categories WHERE slug = ANY(${arrayLiteral(LEAVES.map((leaf) => leaf.slug))}::text[])`),
  )
  return { ids: new Map(rows.map((row) => [row.slug, row.id])), created }
}

interface BatchCounts {
  variants: number
  movements: number
  outOfStock: number
  inactive: number
}

/** Writes one batch of products with everything that hangs off them, then their derived columns. */
async function insertBatch(db: Db, batch: DemoProduct[], categoryIds: Map<string, string>, currency: string): Promise<BatchCounts> {
  const productIds = batch.map(() => randomUUID())
  const variantRows = batch.flatMap((product, i) =>
    product.variants.map((variant, position) => ({ ...variant, id: randomUUID(), product_id: productIds[i]!, position, age: product.age_seconds })),
  )
  const column = <T, V extends string | number | boolean | null>(rows: T[], get: (row: T) => V) => arrayLiteral(rows.map(get))

  await db.execute(sql`
    INSERT INTO products (id, slug, name, description, category_id, attributes, is_active, created_at, updated_at)
    SELECT id, slug, name, description, category_id, attributes, is_active, now() - age * interval '1 second', now() - age * interval '1 second'
    FROM unnest(${arrayLiteral(productIds)}::uuid[], ${column(batch, (p) => p.slug)}::text[], ${column(batch, (p) => p.name)}::text[],
      ${column(batch, (p) => p.description)}::text[], ${column(batch, (p) => categoryIds.get(p.category)!)}::uuid[],
      ${column(batch, (p) => JSON.stringify(p.attributes))}::jsonb[], ${column(batch, (p) => p.is_active)}::boolean[],
      ${column(batch, (p) => p.age_seconds)}::int[])
      AS t(id, slug, name, description, category_id, attributes, is_active, age)`)

  await db.execute(sql`
    INSERT INTO product_variants (id, product_id, sku, name, attributes, price, compare_at_price, currency, position, created_at, updated_at)
    SELECT id, product_id, sku, name, attributes, price, compare_at_price, ${currency}::text, position, now() - age * interval '1 second', now() - age * interval '1 second'
    FROM unnest(${column(variantRows, (v) => v.id)}::uuid[], ${column(variantRows, (v) => v.product_id)}::uuid[], ${column(variantRows, (v) => v.sku)}::text[],
      ${column(variantRows, (v) => v.name)}::text[], ${column(variantRows, (v) => JSON.stringify(v.attributes))}::jsonb[],
      ${column(variantRows, (v) => v.price)}::int[], ${column(variantRows, (v) => v.compare_at_price)}::int[],
      ${column(variantRows, (v) => v.position)}::int[], ${column(variantRows, (v) => v.age)}::int[])
      AS t(id, product_id, sku, name, attributes, price, compare_at_price, position, age)`)

  // The ledger rows come from the stock rows in the same statement: stock equals its ledger by construction.
  await db.execute(sql`
    WITH stock AS (
      INSERT INTO stock_levels (variant_id, on_hand)
      SELECT * FROM unnest(${column(variantRows, (v) => v.id)}::uuid[], ${column(variantRows, (v) => v.on_hand)}::int[])
      RETURNING variant_id, on_hand
    )
    INSERT INTO stock_movements (variant_id, delta_on_hand, reason, actor)
    SELECT variant_id, on_hand, 'seed', 'system' FROM stock WHERE on_hand > 0`)

  await db.execute(sql`
    INSERT INTO product_images (product_id, key, content_type, size, width, height, alt, position)
    SELECT product_id, key, 'image/svg+xml', size, ${IMAGE_SIDE}::int, ${IMAGE_SIDE}::int, alt, 0
    FROM unnest(${arrayLiteral(productIds)}::uuid[], ${column(batch, (p) => p.image.key)}::text[],
      ${column(batch, (p) => imageSizes.get(p.image.key)!)}::int[], ${column(batch, (p) => p.image.alt)}::text[])
      AS t(product_id, key, size, alt)`)

  await refreshDerived(db, { productIds })

  return {
    variants: variantRows.length,
    movements: variantRows.filter((variant) => variant.on_hand > 0).length,
    outOfStock: batch.filter((product) => product.variants.every((variant) => variant.on_hand === 0)).length,
    inactive: batch.filter((product) => !product.is_active).length,
  }
}

/** Runs fn in a transaction (a savepoint when db already is one). */
function inTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  return db.transaction((trx) => fn(trx as unknown as Db))
}

/**
 * Seeds `products` demo products (and the demo categories), one transaction per batch. Refuses a
 * catalog that has products unless `force`. Does not write the placeholder files: see
 * writeDemoImages.
 */
export async function seedDemo(db: Db, options: SeedDemoOptions): Promise<SeedDemoCounts> {
  const seed = options.seed ?? DEFAULT_SEED
  const batchSize = options.batchSize ?? DEFAULT_BATCH
  const existing = await countProducts(db)
  if (existing > 0 && !options.force) throw new CatalogNotEmptyError(existing)
  const first = (existing > 0 ? await lastNumber(db) : 0) + 1

  const { ids, created } = await inTransaction(db, ensureCategories)
  const counts: SeedDemoCounts = {
    categories_created: created,
    products: 0,
    variants: 0,
    stock_movements: 0,
    images: 0,
    out_of_stock_products: 0,
    inactive_products: 0,
    first_number: first,
  }
  for (let start = 0; start < options.products; start += batchSize) {
    const size = Math.min(batchSize, options.products - start)
    const batch = Array.from({ length: size }, (_, i) => demoProduct(seed, first + start + i))
    const written = await inTransaction(db, (tx) => insertBatch(tx, batch, ids, options.currency))
    counts.products += size
    counts.images += size
    counts.variants += written.variants
    counts.stock_movements += written.movements
    counts.out_of_stock_products += written.outOfStock
    counts.inactive_products += written.inactive
    options.onProgress?.(counts.products, options.products)
  }
  return counts
}

/**
 * Fresh statistics and visibility map after a bulk load: until autovacuum gets to it, the planner
 * guesses a freshly filled catalog is tiny and picks list plans forty times slower, and counts
 * cannot come from the indexes alone. VACUUM cannot run in a transaction: call it after commit.
 */
export async function refreshCatalogStatistics(db: Db): Promise<void> {
  await db.execute(sql`VACUUM (ANALYZE) categories, products, product_variants, stock_levels, product_images, search_words`)
}

/**
 * Seeds the small development catalog when the catalog has no products; answers null when it
 * had some. The check and the seeding share one transaction under an advisory lock, so processes
 * starting together seed once: the others wait, then find products.
 */
export async function seedDemoIfEmpty(db: Db, options: Omit<SeedDemoOptions, 'force'>): Promise<SeedDemoCounts | null> {
  return inTransaction(db, async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${FIRST_START_LOCK})`)
    if ((await countProducts(tx)) > 0) return null
    return seedDemo(tx, options)
  })
}

/** Start-up hook (settings.db.seedDemoOnStart): the demo catalog and its placeholder images on first start. */
export async function seedDemoOnStart(platform: Platform): Promise<void> {
  const { settings, log, database } = platform
  if (!settings.db.seedDemoOnStart) return
  // The usual start, after the first: one count, nothing written.
  if ((await countProducts(database.db)) > 0) return
  const started = performance.now()
  // Placeholders first: no row ever points at a missing file, and no upload runs inside the transaction.
  await writeDemoImages(platform.storage)
  const counts = await seedDemoIfEmpty(database.db, { products: FIRST_START_PRODUCTS, currency: settings.currency })
  if (counts) await refreshCatalogStatistics(database.db)
  if (counts) log.info({ ...counts, duration_ms: Math.round(performance.now() - started) }, 'demo catalog seeded (SEED_DEMO_ON_START)')
}
