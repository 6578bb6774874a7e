import type { Runtime } from '../../runtime/runtime.ts'
import { ClusterResponse } from '../schemas/cluster.ts'
import { errors } from '../schemas/common.ts'
import type { Server } from '../server-type.ts'

const iso = (ms: number) => new Date(ms).toISOString()

export function clusterRoutes(app: Server, runtime: Runtime): void {
  app.get(
    '/api/cluster',
    {
      schema: {
        operationId: 'getCluster',
        summary: 'The instances of this cluster and which pipelines each runs',
        tags: ['health'],
        response: { 200: ClusterResponse, ...errors(401, 403, 429) },
      },
      config: { role: 'read' },
    },
    async () => {
      const view = runtime.cluster
      const me = runtime.config.instanceId
      const pipelines = runtime.listPipelines()
      if (!view)
        return {
          instance: me,
          clustered: false,
          lease_ms: runtime.config.clusterLeaseMs,
          instances: [
            {
              id: me,
              url: '',
              started_at: iso(runtime.startedAt),
              last_seen: iso(runtime.clock()),
              pipelines: pipelines.filter((p) => p.record.status === 'running').map((p) => p.record.id),
            },
          ],
          pipelines: pipelines.map((p) => ({
            id: p.record.id,
            name: p.record.name,
            status: p.record.status,
            owner: p.record.status === 'running' ? me : null,
            epoch: null,
            since: null,
            partitions: p.partitions.map(({ partition, position, lag }) => ({ partition, position, lag })),
            last_handover: null,
          })),
        }
      const alive = new Set(view.instances.map((i) => i.id))
      const live = view.leases.filter((l) => l.expiresAt > 0 && alive.has(l.instanceId))
      return {
        instance: me,
        clustered: true,
        lease_ms: view.leaseMs,
        instances: view.instances.map((i) => ({
          id: i.id,
          url: i.url,
          started_at: iso(i.startedAt),
          last_seen: iso(i.lastSeen),
          pipelines: live.filter((l) => l.instanceId === i.id).map((l) => l.pipelineId),
        })),
        pipelines: pipelines.map((p) => {
          const lease = view.leases.find((l) => l.pipelineId === p.record.id)
          const running = lease !== undefined && live.includes(lease)
          return {
            id: p.record.id,
            name: p.record.name,
            status: p.record.status,
            owner: running ? lease.instanceId : null,
            epoch: lease ? lease.epoch : null,
            since: running ? iso(lease.acquiredAt) : null,
            partitions: p.partitions.map(({ partition, position, lag }) => ({ partition, position, lag })),
            last_handover: lease?.handover
              ? {
                  from: lease.handover.from,
                  to: lease.handover.to,
                  at: iso(lease.handover.at),
                  paused_ms: Math.round(lease.handover.pausedMs),
                }
              : null,
          }
        }),
      }
    },
  )
}
