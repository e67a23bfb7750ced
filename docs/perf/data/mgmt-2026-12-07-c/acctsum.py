import json, sys
for f in sys.argv[1:]:
    print(f)
    for l in open(f):
        d = json.loads(l)
        print(f"  {'with   ' if d['polled'] else 'without'} {d['msg_s']:>8} msg/s  broker us/msg total {d['us_msg_total']:>5} amqp {d['us_msg_amqp']:>5} http {d['us_msg_http']:>4} sched {d['us_msg_sched']:>5} thr {d['us_msg_threads']:>5} | http {d['http_pct']}% thr {d['threads_pct']}% of a core | broker {d['broker_pct']}% lg {d['loadgen_pct']}% pollers {d['pollers_pct']}% | max step {d['max_step_ms']} | >=1ms CPU steps {d['hist']}")
