# kare commission: the field crew's checks (edge-service/src/commission/). Every message a crew
# reads says what was found and, when it is not a pass, what to do.

cm-step-box = Box: the appliance itself
cm-step-ports = Serial ports
cm-step-node = Sensor nodes
cm-step-meters = Meters
cm-step-cross = Cross-checks: node against meters
cm-step-uplinks = Uplinks: repair desk and InfluxDB
cm-fix-label = What to do:
cm-start = kare commission: configuration { $config }, crew { $crew }
cm-ask-crew = Your name (as it goes on the record):
cm-summary-counts = { $pass } passed, { $warn } warnings, { $fail } failed
cm-config-written = Configuration with the sources found written to { $path }: `kare run --config { $path }` accepts it as it is.

cm-clock-synced = The clock is synchronised (offset { $offset } ms).
cm-clock-unsynced = The clock is not synchronised: event and ticket times may be seconds off and drift.
cm-clock-offset = The clock is synchronised but { $offset } ms off: the time daemon is still correcting it.
cm-clock-unreadable = The clock's state could not be read: { $error }.
cm-clock-fix = Enable NTP (`timedatectl set-ntp true`) or point chrony at the utility's time server, then wait for `timedatectl` to show "System clock synchronized: yes".
cm-disk = { $free } MB free of { $total } MB under { $dir }.
cm-disk-unreadable = Free space under { $dir } could not be read: { $error }.
cm-disk-fix = Free space on the appliance's storage (old logs, other files) or fit a larger card: the store needs room for events, tickets and history.
cm-store-ok = The store's folder { $dir } can be written.
cm-store-bad = The store's folder { $dir } cannot be written: { $error }.
cm-store-fix = Check that the folder exists, is on a writable file system and belongs to the user kare runs as (`chown kare: /var/lib/kare`).
cm-ups-none = No UPS inputs are configured: when the appliance's own supply fails it cannot say so before it goes dark.
cm-ups-none-fix = Wire the UPS HAT's "mains lost" and "battery low" outputs to GPIO inputs and add an [ups] section (see systemd/kare.toml).
cm-ups-unreadable = The UPS inputs cannot be read: { $error }.
cm-ups-fix = Check the [ups] GPIO numbers against the HAT's manual, and that kare runs on the Pi in the gpio group.
cm-ups-ok = UPS: mains present, battery not low.
cm-ups-on-battery = UPS: the appliance is running on battery (mains lost).
cm-ups-battery-low = UPS: the battery is low.
cm-ups-state-fix = Restore the appliance's mains supply and let the battery charge before you leave; if mains is present, check the input's polarity (`active = "low"` or `"high"`).
cm-version = kare { $version } ({ $target }).

cm-port-ok = { $port } is present ({ $used }).
cm-port-missing = { $port } is not there ({ $used }).
cm-port-missing-fix = Check the USB adapter is plugged in and its cable whole; `ls -l /dev/serial/by-id` lists the adapters the system sees; correct the port in the configuration.
cm-port-unstable = { $port } ({ $used }) is a name the system gives in plug-in order: after a reboot it may be another adapter.
cm-port-unstable-fix = Use the stable name { $stable } in the configuration.
cm-port-unused = { $port } ({ $device }) is not used by the configuration.
cm-port-none = No serial port is configured or plugged in.

cm-wait-node = Listening to sensor node { $node } for { $seconds } s
cm-node-none = No sensor node is configured: outages will be seen by the meters' polls only, minutes late.
cm-node-none-fix = Connect the sensor node and add a [[node]] section (or run with --write-config to have one written).
cm-node-port-error = Cannot open { $port }: { $error }.
cm-node-silent = Nothing at all was received on { $port }.
cm-node-silent-fix = Check that the node is powered (its LED), that its USB or RS-485 cable is on this port, and the TX/RX wiring.
cm-node-garbled = { $bytes } bytes arrived on { $port } at { $baud } baud but no pqlink frame decoded.
cm-node-no-hello = Frames arrived on { $port } but no Hello: the node's identity and scale are unknown.
cm-node-garbled-fix = Check the baud rate (pqlink runs at 115200), that this port is the node's and not a meter bus, and listen longer (--node-seconds 20): a node says Hello every 10 s.
cm-node-hello = Node { $id }, firmware { $firmware }, channels { $channels }, { $rate } samples/s, { $nominal } Hz.
cm-node-locked = Locked to the supply: all { $locked } windows since the first lock (of { $total } heard).
cm-node-unlocked = Not locked to the supply: only { $locked } of { $total } windows.
cm-node-unlocked-fix = The reference phase (the first channel) must carry voltage: check its fuse and wiring; a supply far off nominal frequency also unlocks.
cm-node-voltage = { $channel }: { $volts } V, { $pct } % of Udin { $udin } V.
cm-node-voltage-missing = { $channel }: { $volts } V, no voltage on this phase.
cm-node-voltage-missing-fix = Check the fuse and the voltage wire of { $channel } at the node's terminals and at the tap.
cm-node-voltage-sqrt3-high = { $channel }: { $volts } V is √3 × the declared { $udin } V: a line-to-line voltage on a phase-to-neutral input.
cm-node-voltage-sqrt3-high-fix = Check the PT ratio and the wiring: the node input must see phase-to-neutral; or, if the system is measured line-to-line, set udin = { $volts } in [[node]].
cm-node-voltage-sqrt3-low = { $channel }: { $volts } V is the declared { $udin } V ÷ √3: udin is set line-to-line but the node measures phase-to-neutral.
cm-node-voltage-sqrt3-low-fix = Set udin in [[node]] to the phase-to-neutral voltage ({ $volts } V), or check the PT ratio.
cm-node-voltage-off = { $channel }: { $volts } V is { $pct } % of the declared { $udin } V (outside ±10 %).
cm-node-voltage-off-fix = Check the PT ratio, the node's scale and udin in [[node]]; measure the terminal voltage with a meter.
cm-node-frequency = Frequency { $freq } Hz ({ $off } % from { $nominal } Hz).
cm-node-frequency-off = Frequency { $freq } Hz is { $off } % from nominal { $nominal } Hz (more than ±1 %).
cm-node-frequency-fix = Check that the node's nominal frequency matches the system's; a site on its own generator may run off frequency.
cm-node-sequence-abc = Phase sequence A-B-C (B lags A by 120°, C by 240°).
cm-node-sequence-acb = Phase sequence A-C-B: two phases are swapped.
cm-node-sequence-acb-fix = Swap the voltage wires of B and C at the node's terminals (with the supply isolated), then run again.
cm-node-sequence-missing = Phase sequence unknown: { $channel } has no voltage.
cm-node-sequence-unclear = The phase angles fit neither A-B-C nor A-C-B: two inputs may be on the same phase, or one is reversed.
cm-node-sequence-unclear-fix = Check each voltage wire goes to its own phase, and the neutral to N.
cm-node-sequence-single = { $channels } channel(s): no phase sequence to check.
cm-node-sequence-unknown = The node does not report phase angles (firmware before pqlink 2): phase sequence not checked.
cm-node-sequence-unknown-fix = Update the node's firmware, or check the sequence with a phase-rotation meter.
cm-node-link-clean = Link clean: { $frames } frames, no damaged frame, no gap, nothing dropped by the node.
cm-node-link-errors = Link errors: { $damaged } damaged frames, { $gaps } half cycles missing, { $dropped } dropped by the node, { $adc } ADC errors, { $newer } frames of a newer protocol.
cm-node-link-errors-fix = Check the cable (length, shield, a USB hub), the baud rate, and that nothing else reads this port.
cm-node-link-newer-fix = The node speaks a newer pqlink than this kare: update kare first, then the nodes.

cm-wait-meters = Reading the meters (at most { $seconds } s)
cm-meter-none = No meter is configured: no energy data, no second witness of an outage.
cm-meter-none-fix = Add [[modbus]] or [[dlt645]] sections for the site's meters.
cm-meter-ok = { $meter } answers: { $values } values read.
cm-meter-silent = { $meter } does not answer: { $why }.
cm-meter-no-answer-within = no answer within { $seconds } s
cm-meter-silent-fix = Check the { $protocol } address, baud rate and parity against the meter's display, the RS-485 A/B wiring (swap A and B if unsure) and the bus termination.

cm-cross-voltage = { $meter } agrees with node { $node }: phase { $phase } { $meter_v } V against { $node_v } V ({ $off } %).
cm-cross-voltage-sqrt3 = { $meter } reads phase { $phase } { $meter_v } V, node { $node } { $node_v } V: a factor of √3.
cm-cross-voltage-sqrt3-fix = The meter's PT ratio or its wiring is line-to-line where the node's is phase-to-neutral (or the reverse): correct the meter's PT ratio setting or its voltage wiring.
cm-cross-voltage-off = { $meter } reads phase { $phase } { $meter_v } V, node { $node } { $node_v } V ({ $off } %, more than ±2 %).
cm-cross-voltage-off-fix = Check the meter's PT ratio setting, that its voltage wires are on the same phases as the node's, and the node's scale.
cm-cross-power-ok = { $meter }: active power positive on every loaded phase.
cm-cross-power-unloaded = { $meter }: too little load to judge the CTs' direction.
cm-cross-power-unloaded-fix = Run again when the site draws load (at least 50 W per phase).
cm-cross-power-reversed = { $meter }: active power negative on phase { $phases }: the CT is reversed.
cm-cross-power-reversed-fix = Turn the CT of phase { $phases } round (P1 towards the supply) or swap its S1/S2 wires at the meter, with the CT shorted first.
cm-cross-power-all-export = { $meter }: active power negative on all three phases.
cm-cross-power-all-export-fix = If the site does not generate, all three CTs face the wrong way: turn them round (P1 towards the supply).
cm-cross-none = No node and meter measure the same phases: nothing to cross-check.
cm-cross-none-fix = A meter reading phase voltages beside a sensor node lets the commissioning catch PT ratio and wiring errors.

cm-wait-uplinks = Sending test tickets
cm-uplink-ok = { $endpoint } ({ $channel }; routes: { $kinds }) took the test ticket: { $answer }.
cm-uplink-failed = { $endpoint } ({ $channel }; routes: { $kinds }) did not take the test ticket: { $answer }.
cm-uplink-refused = { $endpoint } ({ $channel }; routes: { $kinds }) refused the test ticket: { $answer }.
cm-uplink-fix = Check { $endpoint }'s address, credentials and secret in [delivery], and that the appliance's network reaches it; ask the desk whether their receiver is up.
cm-uplink-none = No delivery endpoint is configured: tickets stay on the appliance.
cm-uplink-none-fix = Add a [[delivery.endpoint]] for the repair desk and route repair tickets to it in [routes].
cm-uplink-no-repair = Repair tickets are routed nowhere: the desk will not hear of this site's outages.
cm-uplink-no-repair-fix = Set `repair = ["<endpoint>"]` in [routes].
cm-uplink-skipped = Uplinks not checked (--no-uplinks).
cm-uplink-skipped-fix = Run once without --no-uplinks before leaving the site.
cm-influx-ok = InfluxDB at { $url }: a point written and read back.
cm-influx-write-failed = InfluxDB at { $url } did not take a point: { $why }.
cm-influx-not-read = InfluxDB at { $url } took a point but it was not read back: { $why }.
cm-influx-fix = Check [influx] url, database (or bucket), credentials, and that the server is reachable from the appliance.

cm-record-written = Record written: { $path }
cm-record-not-written = The record could not be written to { $path }: { $error }
cm-record-stored = Record stored in the store ({ $path }, record { $id }).
cm-record-not-stored = The record could not be stored: { $error }
cm-record-sent = Record sent to { $endpoint }: { $answer }
cm-record-not-sent = The record could not be sent to { $endpoint }: { $answer }
cm-record-no-desk = The record was not sent: no repair route is configured.
cm-verify-ok = { $file }: signature valid (key { $key }). Site { $site }, crew { $crew }, { $when }: { $verdict } ({ $pass } passed, { $warn } warnings, { $fail } failed).
cm-verify-bad = { $file }: NOT VALID: { $why }

cm-page-title = Commissioning record
cm-page-site = Site
cm-page-crew = Crew
cm-page-when = When
cm-page-appliance = Appliance
cm-page-verdict = Result
cm-page-signatures = Signatures
cm-page-crew-sign = Crew
cm-page-customer-sign = Customer
cm-page-key = Appliance key (Ed25519):
cm-page-signature = Signature:
cm-page-verify = Check the electronic record with `kare commission verify FILE`.
cm-wait-port = Listening on { $port } for a sensor node
cm-port-node-found = A sensor node (id { $id }) speaks on { $port }, which the configuration does not use.
cm-port-node-found-fix = Add it as a [[node]] with port = "{ $port }" (--write-config writes it for you).
cm-wait-scan = Scanning { $port } for Modbus meters (at most { $seconds } s)
cm-wait-dlt645 = Asking { $port } for DL/T 645 meters (broadcast address read)
cm-scan-failed = { $port } could not be scanned: { $error }
cm-scan-nothing = Nothing answered on { $port } (bauds { $bauds }, addresses { $addresses }).
cm-scan-nothing-fix = Check the meters are powered, the RS-485 A/B wiring (swap A and B if unsure), the termination resistors, and the meters' address and baud on their displays.
cm-scan-tcp-fix = Check the gateway's address and port (502 for Modbus TCP), that it is on this network, and its serial settings towards the meters.
cm-scan-bad-address = { $address } is not an address:port (e.g. 192.168.1.20:502).
cm-scan-found = Modbus device at address { $slave } on { $port }{ $line }: { $profile } ({ $volts }).
cm-scan-unknown = A Modbus device answers at address { $slave } on { $port }{ $line }, but no profile fits it.
cm-scan-unknown-fix = Write a profile for this meter from its manual (edge-service/profiles/modbus/README.md) and name it in [[modbus.device]].
cm-scan-ambiguous = Modbus device at address { $slave } on { $port }{ $line } fits several profiles: { $candidates }.
cm-scan-ambiguous-fix = Read the meter's model off its label and name that profile in [[modbus.device]] (one of { $candidates }).
cm-scan-elsewhere-fix = The configuration's bus { $bus } expects { $was }: set slave_id = { $slave } and baud = { $baud } there (or use --write-config).
cm-scan-dlt645 = DL/T 645 meter { $address } on { $port }, { $baud } baud.
cm-cross-power-mispaired = { $meter }: phase { $phases } reads a power factor far below the other phases': its CT is on a different phase's conductor from its voltage.
cm-cross-power-mispaired-fix = Put each CT on the conductor of the phase whose voltage the meter takes at the same terminal group (CT of A with voltage A …); turning the CT round would not fix it.
cm-cross-power-no-pf = { $meter }: active power positive on every loaded phase, but without per-phase power factors a CT on another phase cannot be ruled out.
cm-cross-power-no-pf-fix = Use a meter profile that reads the per-phase power factor, or check the CT-to-phase pairing by hand.
cm-node-newer = Frames arrive on { $port } but all of a newer pqlink than this kare speaks ({ $bytes } bytes).
cm-scan-dlt645-several = Several DL/T 645 meters answered the broadcast on { $port } at once (at { $bauds } baud): their replies collided.
cm-scan-dlt645-several-fix = A broadcast finds one meter alone on a bus: enter each meter's nameplate address in [[dlt645.device]] and run again; each is then read by its address.
