/** Events the products app publishes (payloads carry ids; consumers read the rest through the service). */
export interface ProductsEvents {
  /**
   * Products whose public view changed: created, edited, deleted, an image, a review, or stock
   * crossing zero. The search index follows it (OpenSearch backend).
   */
  'catalog.products_changed': { product_ids: string[] }
}

declare module '../../core/events/index.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface DomainEvents extends ProductsEvents {}
}
