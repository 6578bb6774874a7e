import Type from 'typebox'

const Handover = Type.Object({
  from: Type.String({ description: 'the instance that ran it before' }),
  to: Type.String(),
  at: Type.String({ format: 'date-time' }),
  paused_ms: Type.Number({ description: "from the old owner's last renewal to the new owner reading again" }),
})

/** GET /api/cluster */
export const ClusterResponse = Type.Object({
  instance: Type.String({ description: 'the instance that answered' }),
  clustered: Type.Boolean({
    description: 'false: this instance runs alone (no DATABASE_URL and KAFKA_BROKERS)',
  }),
  lease_ms: Type.Integer(),
  instances: Type.Array(
    Type.Object({
      id: Type.String(),
      url: Type.String(),
      started_at: Type.String({ format: 'date-time' }),
      last_seen: Type.String({ format: 'date-time' }),
      pipelines: Type.Array(Type.String(), { description: 'ids of the pipelines it runs' }),
    }),
  ),
  pipelines: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      status: Type.String(),
      owner: Type.Union([Type.String(), Type.Null()], {
        description: 'the instance running it (null: none now)',
      }),
      epoch: Type.Union([Type.Integer(), Type.Null()], { description: 'moved by every take-over' }),
      since: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      partitions: Type.Array(
        Type.Object({
          partition: Type.Integer(),
          position: Type.Union([Type.Integer(), Type.Null()]),
          lag: Type.Integer(),
        }),
        { description: 'as the owner last checkpointed (this instance: live)' },
      ),
      last_handover: Type.Union([Handover, Type.Null()]),
    }),
  ),
})
