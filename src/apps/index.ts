/**
 * Composition root: creates each app's services in dependency order and registers the apps'
 * plugins. The app graph can be read here, top to bottom.
 */
import type { FastifyInstance } from 'fastify'
import type { Platform } from '../core/platform.js'
import { healthApp } from './health/index.js'

export async function registerApps(app: FastifyInstance, platform: Platform): Promise<void> {
  await healthApp(app, platform)
}
