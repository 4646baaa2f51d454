import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Application } from '#common/model.ts';
import { join } from 'node:path';
import { CORPUS, dryRun, NODES, type Outcome } from './corpus-deploy.ts';

// The corpus of real-world-shaped Compose files (test/fixtures/compose/corpus/, each opening
// with what public stack it is modelled on), given to what `drover deploy --dry-run` does:
// the CLI's interpolation (.env, env_file, profiles), then the control service's parse.
// Each file is accepted with the model checked on key fields, or refused with all its
// problems, in file order ("@" stands for the file's name).

const apps = (o: Outcome): Record<string, Application> => {
  if (!('accepted' in o)) throw new Error(`refused:\n${o.refused.join('\n')}`);
  return Object.fromEntries(o.accepted.map((a) => [a.name, a]));
};

/** Accepted files → the applications they give, checked on the fields that matter for each. */
const ACCEPTED: Record<string, { options?: { profiles?: string[]; env?: Record<string, string> }; apps: Record<string, Partial<Application>> }> = {
  'postgres.yml': {
    apps: {
      db: {
        image: 'postgres:16.1', // POSTGRES_VERSION from the corpus's .env
        container_name: 'postgres',
        shm_size: 128 * 1024 * 1024,
        environment: { POSTGRES_PASSWORD: 'example', PGDATA: '/var/lib/postgresql/data/pgdata' },
        restart_policy: { name: 'always' },
        health_check: { type: 'exec', command: ['/bin/sh', '-c', 'pg_isready -U postgres'], initial_delay_seconds: 0, period_seconds: 10, timeout_seconds: 5, failure_threshold: 5 },
      },
      adminer: { links: [{ alias: 'db', local_port: 5432, remote_port: 5432 }] },
    },
  },
  'mysql.yml': { apps: { db: { command_line: ['--default-authentication-plugin=mysql_native_password'], cap_add: ['SYS_NICE'] } } },
  'mariadb-env-file.yml': {
    apps: {
      mariadb: {
        // env_file first, environment over it; TZ from .env; quotes and "export" as Compose reads them
        environment: { MARIADB_ROOT_PASSWORD: 's3cret', MARIADB_DATABASE: 'app', MARIADB_USER: 'app', MARIADB_PASSWORD: 'p@ss word', TZ: 'Europe/Berlin', MARIADB_AUTO_UPGRADE: '1' },
        ports: [{ internal: 3306, external: 3307 }],
      },
    },
  },
  'redis-cache.yml': {
    apps: { cache: { command_line: ['redis-server', '--save', '20', '1', '--loglevel', 'warning', '--requirepass', '$ecret'], ulimits: { nofile: { soft: 10000, hard: 20000 } } } },
  },
  'mongo.yml': {
    apps: {
      mongo: { environment: { MONGO_INITDB_ROOT_USERNAME: 'root', MONGO_INITDB_ROOT_PASSWORD: 'example' }, stop_grace_period_seconds: 60 },
      'mongo-express': { environment: { ME_CONFIG_MONGODB_URL: 'mongodb://root:example@mongo:27017/' } },
    },
  },
  'wordpress-mariadb.yml': { apps: { db: { restart_policy: { name: 'always' } }, wordpress: { links: [{ alias: 'db', local_port: 3306, remote_port: 3306 }] } } },
  // top-level "name: cloud" is the project
  'nextcloud.yml': { apps: { db: { project: 'cloud', environment: expect.objectContaining({ MYSQL_ROOT_PASSWORD: 'root' }) as never }, redis: { project: 'cloud', ports: [] }, app: { project: 'cloud', ports: [{ internal: 80, external: 8080 }] } } },
  'gitea.yml': { apps: { server: { container_name: 'gitea', ports: [{ internal: 3000, external: 3000 }, { internal: 22, external: 222 }] }, db: {} } },
  'rabbitmq.yml': { apps: { rabbitmq: { hostname: 'rabbitmq', health_check: expect.objectContaining({ command: ['/bin/sh', '-c', 'rabbitmq-diagnostics -q ping'] }) as never } } },
  'kafka-zookeeper.yml': { apps: { zookeeper: {}, kafka: { links: [{ alias: 'zookeeper', local_port: 2181, remote_port: 2181 }] } } },
  'nats-jetstream.yml': { apps: { nats: { command_line: ['-js', '-sd', '/data', '-m', '8222'], stop_signal: 'SIGUSR2', stop_grace_period_seconds: 30 } } },
  'elasticsearch.yml': {
    apps: {
      es01: { memory_limit: 1024 ** 3, ulimits: { memlock: { soft: -1, hard: -1 }, nofile: { soft: 65536, hard: 65536 } }, environment: expect.objectContaining({ 'discovery.type': 'single-node' }) as never },
      kibana: { environment: { ELASTICSEARCH_HOSTS: '["http://es01:9200"]' } },
    },
  },
  'minio.yml': { apps: { minio: { command_line: ['server', '/data', '--console-address', ':9001'], environment: { MINIO_ROOT_USER: 'minioadmin', MINIO_ROOT_PASSWORD: 'minioadmin' } } } },
  'nginx-hardened.yml': {
    apps: {
      web: {
        read_only: true,
        tmpfs: { '/var/cache/nginx': '', '/var/run': 'size=1m', '/tmp': 'size=16777216' },
        cap_drop: ['ALL'],
        cap_add: ['CHOWN', 'SETGID', 'SETUID', 'NET_BIND_SERVICE'],
        volumes: [expect.objectContaining({ mountpoint: '/usr/share/nginx/html', read_only: true }) as never],
      },
    },
  },
  'ghost.yml': { apps: { ghost: { environment: expect.objectContaining({ database__client: 'mysql' }) as never }, db: {} } },
  'keycloak.yml': { apps: { postgres: {}, keycloak: { command_line: ['start-dev'], links: [{ alias: 'postgres', local_port: 5432, remote_port: 5433 }] } } },
  'grafana.yml': { apps: { grafana: { user: '472', container_name: 'grafana', environment: { GF_SECURITY_ADMIN_PASSWORD: 'admin', GF_INSTALL_PLUGINS: 'grafana-clock-panel' } } } },
  'influxdb.yml': { apps: { influxdb: { logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } } } } },
  'django-celery-extends.yml': {
    apps: {
      // "common" has only the profile "abstract": it is not deployed, its keys are inherited.
      web: { image: 'registry.example.com/shop/web:2024.01', user: 'app', working_dir: '/app', environment: { DJANGO_SETTINGS_MODULE: 'shop.settings', CELERY_BROKER_URL: 'redis://redis:6379/0', ROLE: 'web' } },
      worker: { command_line: ['celery', '-A', 'shop', 'worker', '-l', 'info'], stop_grace_period_seconds: 120, environment: { DJANGO_SETTINGS_MODULE: 'shop.settings', CELERY_BROKER_URL: 'redis://redis:6379/0', ROLE: 'worker' } },
      redis: {},
    },
  },
  'profiles-tools.yml': { options: { profiles: ['debug'] }, apps: { app: {}, db: {}, adminer: { ports: [{ internal: 8080, external: 8080 }] } } },
  'node-app.yml': {
    apps: {
      api: {
        init: true,
        user: 'node',
        working_dir: '/home/node/app',
        stop_signal: 'SIGINT',
        stop_grace_period_seconds: 15,
        labels: { 'com.example.team': 'payments', 'com.example.tier': 'api' },
        logging: { driver: 'json-file', options: { 'max-size': '5m' } },
        restart_policy: { name: 'on-failure', maximum_retry_count: 5 },
      },
    },
  },
  'caddy.yml': { apps: { caddy: { cap_add: ['NET_ADMIN'], ports: [{ internal: 80, external: 80 }, { internal: 443, external: 443 }] }, whoami: {} } },
  'vaultwarden.yml': { apps: { vaultwarden: { environment: { ADMIN_TOKEN: '$argon2id$v=19$m=65540', SIGNUPS_ALLOWED: 'false', DOMAIN: 'https://vault.example.com' } } } },
  'clickhouse.yml': { apps: { clickhouse: { shm_size: 1024 ** 3, cap_add: ['SYS_NICE', 'IPC_LOCK'], ulimits: { nofile: { soft: 262144, hard: 262144 } } } } },
  'memcached.yml': { apps: { memcached: { memory_limit: 128 * 1024 ** 2, cpu_shares: 512 } } },
  'strapi-anchors.yml': { apps: { strapi: { restart_policy: { name: 'always' }, environment: { DATABASE_CLIENT: 'postgres', DATABASE_HOST: 'strapiDB', DATABASE_NAME: 'strapi', NODE_ENV: 'production' } }, strapiDB: {} } },
  'uptime-kuma.yml': { apps: { 'uptime-kuma': { container_name: 'uptime-kuma' } } },
  // Networks are name scopes, expose is reached by name only, UDP and host-address ports go through the proxies (docs/DESIGN.md §21).
  'react-express-mongo.yml': {
    apps: {
      frontend: { networks: { 'react-express': [] }, ports: [{ internal: 3000, external: 3000 }] },
      backend: { networks: { 'express-mongo': [], 'react-express': [] }, expose: [{ internal: 3000 }] },
      mongo: { networks: { 'express-mongo': [] }, expose: [{ internal: 27017 }] },
    },
  },
  'coredns.yml': {
    apps: {
      coredns: {
        ports: [
          { internal: 53, external: 53, protocol: 'udp' },
          { internal: 53, external: 53 },
          { internal: 9153, external: 9153, host_ip: '127.0.0.1' },
        ],
      },
    },
  },
  'graylog-udp.yml': {
    apps: {
      mongodb: { networks: { graylog: [] } },
      opensearch: { expose: [{ internal: 9200 }], networks: { graylog: [] } },
      graylog: {
        ports: [
          { internal: 9000, external: 9000, host_ip: '127.0.0.1' },
          { internal: 1514, external: 1514, protocol: 'udp' },
          { internal: 1514, external: 1514 },
          { internal: 12201, external: 12201, protocol: 'udp' },
        ],
      },
    },
  },
  'networks-aliases.yml': {
    apps: {
      proxy: { networks: { front: [] } },
      app: { networks: { front: [], back: ['api'] } },
      db: { networks: { back: ['database', 'postgres'] } },
    },
  },
  // A read-only bind mount of a project file and a Compose config travel with the deploy; grafana waits for prometheus's health.
  // expose is reached by name (§21); the password travels as a secret, mounted from tmpfs (§22).
  'wordpress-secrets.yml': {
    apps: {
      db: { expose: [{ internal: 3306 }, { internal: 33060 }], files: [expect.objectContaining({ target: '/run/secrets/db_root_password', kind: 'secret' }) as never] },
      wordpress: { ports: [{ internal: 80, external: 80 }] },
    },
  },
  'prometheus-grafana.yml': {
    apps: {
      prometheus: { files: [{ target: '/etc/prometheus/prometheus.yml', kind: 'bind', blob: expect.stringMatching(/^[0-9a-f]{64}$/) as never }] },
      grafana: {
        files: [{ target: '/etc/grafana/provisioning/datasources/ds.yaml', kind: 'config', blob: expect.stringMatching(/^[0-9a-f]{64}$/) as never }],
        depends_on: [{ application: 'prometheus', condition: 'service_healthy' }],
      },
    },
  },
};

/** Refused files → every problem, in file order. What is left here is items 4–7 of "Compose files as people write them". */
const REFUSED: Record<string, string[]> = {
    'refuse-build-local.yml': [
      "@:4:5: service \"web\": unsupported key \"build\": drover runs images and does not build them; build the image first and name it with \"image:\"",
      "@:8:9: service \"web\": key \"volumes[0]\": \".\": a read-write bind mount of a host directory does not move with the service; use a named volume: drover moves it with the service (or add \":ro\" to ship a project file with the deploy)",
    ],
    'refuse-cadvisor.yml': [
      "@:5:5: service \"cadvisor\": unsupported key \"privileged\"",
      "@:6:5: service \"cadvisor\": unsupported key \"devices\"",
      "@:9:9: service \"cadvisor\": key \"volumes[0]\": \"/\": a host path stays on its host and does not move with the service; use a named volume (drover moves it with the service), or a file of the project (\"./file:/path:ro\")",
      "@:10:9: service \"cadvisor\": key \"volumes[1]\": \"/var/run\": a host path stays on its host and does not move with the service; use a named volume (drover moves it with the service), or a file of the project (\"./file:/path:ro\")",
      "@:15:5: service \"node-exporter\": unsupported key \"pid\"",
      "@:16:5: service \"node-exporter\": unsupported key \"network_mode\": drover connects applications through its routing proxy; services reach each other by name on the project\'s networks (\"networks:\"), and \"ports:\" publish on every node",
    ],
    'refuse-coturn.yml': [
      "@:10:5: service \"coturn\": unsupported key \"network_mode\": drover connects applications through its routing proxy; services reach each other by name on the project\'s networks (\"networks:\"), and \"ports:\" publish on every node",
    ],
    'refuse-env-file-missing.yml': [
      "@:5:5: service \"app\": key \"env_file\": \"./app.local.env\": no such file beside the Compose file (or write \"required: false\")",
    ],
    'refuse-extends-file.yml': [
      "@:5:7: service \"web\": key \"extends.file\": \"common-services.yml\": drover reads one Compose file; extend a service of this file, or copy the service in",
      "@:10:5: service \"cache\": key \"extends\": service \"missing-base\" is not in this file",
    ],
    'refuse-healthy-chain.yml': [
      "@:7:7: service \"db\": unsupported key \"healthcheck.start_interval\": needs Docker API 1.44; Docker 20.10 has no start interval (use a short \"interval\")",
      "@:19:9: service \"app\": key \"depends_on.migrate.restart\": not supported: drover restarts each application on its own",
    ],
    'refuse-pihole.yml': [
      "@:14:9: service \"pihole\": key \"volumes[0]\": \"./etc-pihole\": a read-write bind mount of a host directory does not move with the service; use a named volume: drover moves it with the service (or add \":ro\" to ship a project file with the deploy)",
      "@:15:9: service \"pihole\": key \"volumes[1]\": \"./etc-dnsmasq.d\": a read-write bind mount of a host directory does not move with the service; use a named volume: drover moves it with the service (or add \":ro\" to ship a project file with the deploy)",
    ],
    'refuse-port-clash.yml': [
      "@:9:5: service \"blog2\": key \"ports\": published port 8080 is also published by service \"blog\"",
      "@:10:15: service \"blog2\": key \"volumes[0]\": volume \"content\" is already mounted by service \"blog\"; a dataset belongs to one application and moves with it",
      "@:14:5: service \"blog3\": key \"container_name\": \"ghost\" is also the container_name of service \"blog2\"",
    ],
    'refuse-required-var.yml': [
      "@:6:26: required variable DB_PASSWORD is missing a value: DB_PASSWORD must be set",
    ],
    'refuse-swarm-stack.yml': [
      "@:15:5: unsupported key \"secrets.api_key.external\": drover keeps a project's files with the project; give \"file:\" or \"environment:\"",
    ],
    'refuse-traefik.yml': [
      "@:10:9: service \"reverse-proxy\": key \"volumes[0]\": \"/var/run/docker.sock\": a host path stays on its host and does not move with the service; use a named volume (drover moves it with the service), or a file of the project (\"./file:/path:ro\")",
    ],
    'refuse-typos.yml': [
      "@:5:5: service \"web\": unsupported key \"enviroment\": did you mean \"environment\"?",
      "@:7:5: service \"web\": unsupported key \"port\": did you mean \"ports\"?",
      "@:9:5: service \"web\": key \"restart\": \"sometimes\" is not a restart policy (no, always, on-failure[:N], unless-stopped)",
      "@:10:5: service \"web\": key \"mem_limit\": \"lots\" is not a size (\"512M\", \"1G\", bytes)",
      "@:11:5: service \"web\": key \"stop_grace_period\": \"soon\" is not a duration up to 1h (\"10s\", \"1m30s\")",
      "@:13:7: service \"web\": key \"ulimits.nofiles\": \"nofiles\" is not a ulimit (core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack, as)",
    ],
};

describe('the Compose corpus', () => {
  it('has at least 40 files, each saying what it is modelled on, and an expectation for each', async () => {
    const { readFile } = await import('node:fs/promises');
    const files = readdirSync(CORPUS).filter((f) => f.endsWith('.yml')).sort();
    expect(files.length).toBeGreaterThanOrEqual(40);
    expect([...Object.keys(ACCEPTED), ...Object.keys(REFUSED)].sort()).toEqual(files);
    for (const f of files) expect((await readFile(`${CORPUS}/${f}`, 'utf8')).split('\n')[0]).toMatch(/^# Modelled on: \S/);
  });

  it.each(Object.entries(ACCEPTED))('accepts %s', async (file, { options, apps: expected }) => {
    const got = apps(await dryRun(file, options));
    expect(Object.keys(got)).toEqual(Object.keys(expected));
    for (const [name, fields] of Object.entries(expected)) expect(got[name], name).toMatchObject({ project: 'corpus', ...fields });
  });

  it.each(Object.entries(REFUSED))('refuses %s with all its problems', async (file, messages) => {
    const outcome = await dryRun(file);
    expect('refused' in outcome ? outcome.refused : 'accepted').toEqual(messages.map((m) => m.replace(/^@/, file)));
  });

  it('leaves a service out unless one of its profiles is active', async () => {
    expect(Object.keys(apps(await dryRun('profiles-tools.yml')))).toEqual(['app', 'db']);
    expect(Object.keys(apps(await dryRun('profiles-tools.yml', { profiles: ['dev', 'debug'] })))).toEqual(['app', 'db', 'adminer', 'mailhog']);
    expect(Object.keys(apps(await dryRun('profiles-tools.yml', { env: { COMPOSE_PROFILES: 'dev' } })))).toEqual(['app', 'db', 'mailhog']);
  });

  it('deploys examples/compose-keys with its .env, env_file and profile', async () => {
    const example = join(import.meta.dirname, '..', '..', 'examples', 'compose-keys');
    const got = apps(await dryRun('docker-compose.yml', { dir: example, profiles: ['debug'], topology: 'topology.yml' }));
    expect(Object.keys(got)).toEqual(['web', 'cache', 'shell']);
    expect(got.web).toMatchObject({
      project: 'keys',
      container_name: 'keys-web',
      environment: { LOG_LEVEL: 'info', GREETING: 'hello from .env' },
      ports: [{ internal: 8080, external: 8080 }],
      read_only: true,
      logging: { driver: 'json-file', options: { 'max-size': '1m', 'max-file': '2' } },
    });
    expect(got.cache).toMatchObject({ stop_grace_period_seconds: 30, node_uuid: NODES[0]!.uuid });
  });

  it('takes a variable from the shell over .env, and refuses what a required one guards only when it is unset', async () => {
    expect(apps(await dryRun('postgres.yml', { env: { POSTGRES_VERSION: '15' } })).db!.image).toBe('postgres:15');
    expect(apps(await dryRun('refuse-required-var.yml', { env: { DB_PASSWORD: 'pw' } })).db!.environment).toEqual({ POSTGRES_PASSWORD: 'pw' });
  });
});
