"""Application Auto Scaling and CloudWatch alarms on live endpoints: the AWS APIs, their
storage and the per-period driver that runs the pure engine in `tideserve.scaling`.

    tables, codec, store   persistence (one row per target, policy, action, activity, alarm)
    world, tick, alarm_tick   the pure per-tick step shared with the simulator
    ports                  what the driver needs from the endpoint (CapacityPort)
    driver                 the edge: reads metrics and capacity, applies, persists
    aas_api, alarms_api    the operation handlers
    cli                    `tideserve scaling ...`
"""
