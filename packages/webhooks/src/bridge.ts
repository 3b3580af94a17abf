import type { Server } from "node:http";
import {
  Appservice,
  ConfigError,
  DEFAULT_STOP_TIMEOUT_MS,
  Deadline,
  type Logger,
  type MatrixEvent,
  type Registration,
} from "@trestle/appservice";
import Koa from "koa";
import { WebhookCommands } from "./commands/index.js";
import type { WebhooksConfig } from "./config.js";
import { createHttpAvatarFetcher, DeliveryQueue, MatrixHookPoster } from "./delivery/index.js";
import { DirectMessenger } from "./dm.js";
import { HookManager } from "./hooks/hook-manager.js";
import { NedbHookStore } from "./hooks/hook-store.js";
import { HOOK_STATE_EVENT } from "./hooks/model.js";
import { createWebhookRouter } from "./http/webhook-routes.js";
import { HookRateLimiter, NedbDeliveryKeyStore } from "./ingress/index.js";
import { createProvisioningRouter } from "./provisioning/index.js";
import { Renderer } from "./rendering/index.js";

/** Kept back from the appservice's stop for the delivery queue's sends in progress. */
const QUEUE_STOP_RESERVE_MS = 2_000;

export interface WebhooksBridgeOptions {
  config: WebhooksConfig;
  registration: Registration;
  logger: Logger;
  /** The appservice API port (`-p`, else `appservice.port`). */
  port: number;
}

/** What the bridge answers in a room the moment its bot joins. */
const GREETING = "Hi! I post webhooks into this room. Say `!webhook help` to see how to create one.";

/**
 * trestle-webhooks: the appservice core plus hooks (room state + hashed secrets), the
 * durable delivery queue, the public webhook routes, room commands and provisioning.
 */
export class WebhooksBridge {
  readonly appservice: Appservice;
  private readonly renderer: Renderer;
  private parts?: {
    store: NedbHookStore;
    deliveryKeys: NedbDeliveryKeyStore;
    queue: DeliveryQueue;
    commands: WebhookCommands;
    manager: HookManager;
  };
  private webhookServer?: Server;

  constructor(private readonly options: WebhooksBridgeOptions) {
    const { config, registration, logger, port } = options;
    if (config.provisioning.enabled && !config.provisioning.token) {
      throw new ConfigError("Invalid config", [
        "provisioning.token: required when provisioning.enabled is true",
      ]);
    }
    if (config.webhooks.botLocalpart !== registration.sender_localpart) {
      throw new ConfigError("Config and registration disagree", [
        `webhooks.botLocalpart is "${config.webhooks.botLocalpart}" but the registration's sender_localpart is "${registration.sender_localpart}"`,
      ]);
    }
    this.renderer = new Renderer({ logger });
    this.appservice = new Appservice({
      registration,
      homeserver: config.homeserver,
      dataDir: config.dataDir,
      logger,
      processMetrics: config.metrics.enabled,
      http: {
        port,
        bindAddress: config.appservice.bindAddress,
        maxBodyBytes: config.appservice.maxBodyBytes,
      },
      hooks: { onEvent: (event) => this.onEvent(event) },
    });
  }

  /** The port the webhook routes listen on (the appservice port when shared). */
  get webhookPort(): number | undefined {
    const address = this.webhookServer?.address();
    if (address && typeof address === "object") return address.port;
    return this.appservice.port;
  }

  async start(): Promise<void> {
    const { config, logger } = this.options;
    const dataDir = config.dataDir;
    const store = await NedbHookStore.open({ dataDir, logger });
    const deliveryKeys = await NedbDeliveryKeyStore.open({ dataDir, logger });
    const manager = new HookManager({
      store,
      appservice: this.appservice,
      renderer: this.renderer,
      publicUrl: config.webhooks.publicUrl,
      pepper: config.webhooks.secretPepper,
      logger,
    });
    const dms = new DirectMessenger({ appservice: this.appservice, logger, renderer: this.renderer });
    const { avatars } = config.webhooks;
    const poster = new MatrixHookPoster({
      intents: this.appservice.intents,
      userPrefix: config.webhooks.userPrefix,
      logger,
      fetchAvatar: avatars.fetch
        ? createHttpAvatarFetcher({
            timeoutMs: avatars.timeoutMs,
            maxBytes: avatars.maxBytes,
            allowPrivateAddresses: avatars.allowPrivateAddresses,
          })
        : undefined,
    });
    const queue = new DeliveryQueue({
      dataDir,
      hooks: store,
      renderer: this.renderer,
      poster,
      logger,
      metrics: this.appservice.metrics,
    });
    const commands = new WebhookCommands({
      appservice: this.appservice,
      manager,
      renderer: this.renderer,
      dms,
      logger,
      deadLetters: {
        list: () => queue.listFailed(),
        retry: (jobId) => queue.retryFailed(jobId),
        discard: (jobId) => queue.discardFailed(jobId),
      },
    });
    this.parts = { store, deliveryKeys, queue, commands, manager };

    const webhookRoutes = createWebhookRouter({
      manager,
      queue,
      rateLimiter: new HookRateLimiter({
        limit: { ratePerMinute: config.webhooks.rateLimit.perMinute, burst: config.webhooks.rateLimit.burst },
      }),
      deliveryKeys,
      config: config.webhooks,
      logger,
      metrics: this.appservice.metrics,
    });
    const provisioning = config.provisioning.enabled
      ? createProvisioningRouter({
          manager,
          token: config.provisioning.token!,
          logger,
          appservice: this.appservice,
        })
      : undefined;

    // Resumes webhooks accepted before the last shutdown; sending needs no listener.
    const resumed = await queue.start();
    if (resumed) logger.info({ jobs: resumed }, "resuming webhook deliveries from before the restart");

    if (config.webhooks.port === 0) {
      this.appservice.http.app.use(webhookRoutes.routes());
      if (provisioning) this.appservice.http.app.use(provisioning.routes());
      await this.appservice.start();
    } else {
      await this.appservice.start();
      const app = new Koa();
      app.use(async (ctx, next) => {
        if (ctx.path === "/health") {
          ctx.body = { status: "ok" };
          return;
        }
        await next();
      });
      app.use(webhookRoutes.routes());
      if (provisioning) app.use(provisioning.routes());
      this.webhookServer = await new Promise<Server>((resolve, reject) => {
        const server = app.listen(config.webhooks.port, config.webhooks.bindAddress, () => resolve(server));
        server.once("error", reject);
      });
      logger.info({ port: this.webhookPort, host: config.webhooks.bindAddress }, "webhook routes listening");
    }
  }

  /**
   * Stops taking webhooks, then the appservice (transactions, event handling), then the delivery
   * queue, all within `timeoutMs` (default 8 s, inside the CLI's 10 s). Webhooks accepted and not
   * yet delivered stay in the delivery journal for the next start.
   */
  async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    const deadline = new Deadline(timeoutMs);
    if (this.webhookServer) {
      const server = this.webhookServer;
      this.webhookServer = undefined;
      const closed = new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      // A client still sending its body after a second is cut off.
      if (!(await deadline.within(closed, 1_000))) server.closeAllConnections();
      await closed;
    }
    // The delivery queue keeps what it has not sent; its in-progress sends get the last share.
    await this.appservice.stop(deadline.remainingAfter(QUEUE_STOP_RESERVE_MS));
    if (this.parts) {
      await this.parts.queue.stop(deadline.remainingAfter(500));
      await this.parts.deliveryKeys.close();
      await this.parts.store.close();
    }
  }

  private async onEvent(event: MatrixEvent): Promise<void> {
    const parts = this.parts;
    if (!parts) return;
    if (event.type === "m.room.member" && event.state_key === this.appservice.botUserId) {
      if (event.content.membership === "invite") await this.joinInvitedRoom(event.room_id);
      return;
    }
    if (event.type === HOOK_STATE_EVENT) {
      await parts.manager.onStateEvent(event);
      return;
    }
    await parts.commands.handle(event);
  }

  private async joinInvitedRoom(roomId: string): Promise<void> {
    const bot = this.appservice.botIntent;
    await bot.join(roomId);
    const greeting = this.renderer.fromMarkdown(GREETING);
    await bot.sendMessage(roomId, {
      msgtype: "m.notice",
      body: greeting.body,
      format: greeting.format,
      formatted_body: greeting.formatted_body,
    });
  }
}
