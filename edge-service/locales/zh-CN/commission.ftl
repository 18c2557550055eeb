# kare commission：现场调试检查（edge-service/src/commission/）。每条信息都说明发现了什么，
# 未通过时说明该怎么做。

cm-step-box = 本机：装置自身
cm-step-ports = 串口
cm-step-node = 传感节点
cm-step-meters = 电能表
cm-step-cross = 交叉核对：节点与电能表
cm-step-uplinks = 上行：抢修台与 InfluxDB
cm-fix-label = 处理办法：
cm-start = kare 调试：配置 { $config }，调试人员 { $crew }
cm-ask-crew = 您的姓名（写入调试记录）：
cm-summary-counts = 通过 { $pass } 项，警告 { $warn } 项，失败 { $fail } 项
cm-config-written = 已将找到的数据源写入配置 { $path }：`kare run --config { $path }` 可直接使用。

cm-clock-synced = 时钟已同步（偏差 { $offset } ms）。
cm-clock-unsynced = 时钟未同步：事件和工单时间可能偏差数秒并持续漂移。
cm-clock-offset = 时钟已同步，但偏差 { $offset } ms：授时服务仍在校正。
cm-clock-unreadable = 无法读取时钟状态：{ $error }。
cm-clock-fix = 启用 NTP（`timedatectl set-ntp true`）或将 chrony 指向供电公司的授时服务器，等待 `timedatectl` 显示 "System clock synchronized: yes"。
cm-disk = { $dir } 下剩余 { $free } MB，共 { $total } MB。
cm-disk-unreadable = 无法读取 { $dir } 的剩余空间：{ $error }。
cm-disk-fix = 清理装置存储（旧日志、其他文件）或更换更大的存储卡：数据库需要空间保存事件、工单和历史数据。
cm-store-ok = 数据库目录 { $dir } 可写。
cm-store-bad = 数据库目录 { $dir } 不可写：{ $error }。
cm-store-fix = 检查目录存在、所在文件系统可写，且属于运行 kare 的用户（`chown kare: /var/lib/kare`）。
cm-ups-none = 未配置 UPS 输入：装置自身失电时无法在断电前报告。
cm-ups-none-fix = 将 UPS 扩展板的“市电失去”和“电池低”输出接到 GPIO 输入，并添加 [ups] 配置段（见 systemd/kare.toml）。
cm-ups-unreadable = 无法读取 UPS 输入：{ $error }。
cm-ups-fix = 对照扩展板手册核对 [ups] 的 GPIO 编号，并确认 kare 在树莓派上以 gpio 组运行。
cm-ups-ok = UPS：市电正常，电池电量正常。
cm-ups-on-battery = UPS：装置正由电池供电（市电失去）。
cm-ups-battery-low = UPS：电池电量低。
cm-ups-state-fix = 离开前恢复装置市电并让电池充电；若市电正常，请检查输入极性（`active = "low"` 或 `"high"`）。
cm-version = kare { $version }（{ $target }）。

cm-port-ok = { $port } 存在（{ $used }）。
cm-port-missing = { $port } 不存在（{ $used }）。
cm-port-missing-fix = 检查 USB 转换器已插好、线缆完好；`ls -l /dev/serial/by-id` 可列出系统识别的转换器；修正配置中的串口。
cm-port-unstable = { $port }（{ $used }）是按插入顺序分配的名称：重启后可能变成另一个转换器。
cm-port-unstable-fix = 在配置中改用固定名称 { $stable }。
cm-port-unused = { $port }（{ $device }）未被配置使用。
cm-port-none = 未配置也未插入任何串口。

cm-wait-node = 正在监听传感节点 { $node }，{ $seconds } 秒
cm-node-none = 未配置传感节点：停电只能靠电能表轮询发现，要晚几分钟。
cm-node-none-fix = 连接传感节点并添加 [[node]] 配置段（或使用 --write-config 自动写出）。
cm-node-port-error = 无法打开 { $port }：{ $error }。
cm-node-silent = { $port } 上没有收到任何数据。
cm-node-silent-fix = 检查节点已上电（指示灯）、其 USB 或 RS-485 线接在此串口上，以及收发接线。
cm-node-garbled = { $port } 以 { $baud } 波特率收到 { $bytes } 字节，但没有解出 pqlink 帧。
cm-node-no-hello = { $port } 收到了数据帧但没有 Hello：节点身份和量程未知。
cm-node-garbled-fix = 检查波特率（pqlink 为 115200）、此串口确为节点而非电能表总线，并延长监听（--node-seconds 20）：节点每 10 秒发送一次 Hello。
cm-node-hello = 节点 { $id }，固件 { $firmware }，通道 { $channels }，每秒 { $rate } 个采样，{ $nominal } Hz。
cm-node-locked = 已锁定电网：首次锁定后的 { $locked } 个窗口全部锁定（共收到 { $total } 个）。
cm-node-unlocked = 未锁定电网：{ $total } 个窗口中仅 { $locked } 个。
cm-node-unlocked-fix = 参考相（第一个通道）必须有电压：检查其保险和接线；频率严重偏离额定值也会失锁。
cm-node-voltage = { $channel }：{ $volts } V，为 Udin { $udin } V 的 { $pct } %。
cm-node-voltage-missing = { $channel }：{ $volts } V，该相无电压。
cm-node-voltage-missing-fix = 检查 { $channel } 在节点端子和取压点的保险及电压线。
cm-node-voltage-sqrt3-high = { $channel }：{ $volts } V 为标称 { $udin } V 的 √3 倍：相电压输入接入了线电压。
cm-node-voltage-sqrt3-high-fix = 检查 PT 变比和接线：节点输入应为相电压；若按线电压测量，请在 [[node]] 中设置 udin = { $volts }。
cm-node-voltage-sqrt3-low = { $channel }：{ $volts } V 为标称 { $udin } V 的 1/√3：udin 按线电压设置，而节点测的是相电压。
cm-node-voltage-sqrt3-low-fix = 将 [[node]] 中的 udin 设为相电压（{ $volts } V），或检查 PT 变比。
cm-node-voltage-off = { $channel }：{ $volts } V 为标称 { $udin } V 的 { $pct } %（超出 ±10 %）。
cm-node-voltage-off-fix = 检查 PT 变比、节点量程和 [[node]] 中的 udin；用万用表测量端子电压。
cm-node-frequency = 频率 { $freq } Hz（偏离 { $nominal } Hz { $off } %）。
cm-node-frequency-off = 频率 { $freq } Hz 偏离额定 { $nominal } Hz { $off } %（超过 ±1 %）。
cm-node-frequency-fix = 检查节点的额定频率与系统一致；自备发电机运行的站点可能偏频。
cm-node-sequence-abc = 相序 A-B-C（B 滞后 A 120°，C 滞后 240°）。
cm-node-sequence-acb = 相序 A-C-B：有两相接反。
cm-node-sequence-acb-fix = 在断电隔离后对调节点端子上 B、C 两相电压线，然后重新检查。
cm-node-sequence-missing = 无法判断相序：{ $channel } 无电压。
cm-node-sequence-unclear = 相角既不符合 A-B-C 也不符合 A-C-B：可能两路输入接在同一相，或有一相反接。
cm-node-sequence-unclear-fix = 检查每根电压线各接一相，中性线接 N。
cm-node-sequence-single = { $channels } 个通道：无需检查相序。
cm-node-sequence-unknown = 节点不上报相角（pqlink 2 之前的固件）：未检查相序。
cm-node-sequence-unknown-fix = 升级节点固件，或用相序表检查。
cm-node-link-clean = 链路正常：{ $frames } 帧，无损坏帧、无缺帧、节点无丢弃。
cm-node-link-errors = 链路有错误：损坏帧 { $damaged }，缺失半周波 { $gaps }，节点丢弃 { $dropped }，ADC 错误 { $adc }，新版协议帧 { $newer }。
cm-node-link-errors-fix = 检查线缆（长度、屏蔽、USB 集线器）、波特率，以及没有其他程序读取此串口。
cm-node-link-newer-fix = 节点使用的 pqlink 比本 kare 新：先升级 kare，再升级节点。

cm-wait-meters = 正在读取电能表（最多 { $seconds } 秒）
cm-meter-none = 未配置电能表：没有电量数据，也没有停电的第二个见证。
cm-meter-none-fix = 为站点的电能表添加 [[modbus]] 或 [[dlt645]] 配置段。
cm-meter-ok = { $meter } 有应答：读到 { $values } 个数值。
cm-meter-silent = { $meter } 无应答：{ $why }。
cm-meter-no-answer-within = { $seconds } 秒内无应答
cm-meter-silent-fix = 对照电能表显示核对 { $protocol } 地址、波特率和校验位，检查 RS-485 的 A/B 接线（不确定时对调 A、B）和终端电阻。

cm-cross-voltage = { $meter } 与节点 { $node } 一致：{ $phase } 相 { $meter_v } V 对 { $node_v } V（{ $off } %）。
cm-cross-voltage-sqrt3 = { $meter } 的 { $phase } 相为 { $meter_v } V，节点 { $node } 为 { $node_v } V：相差 √3 倍。
cm-cross-voltage-sqrt3-fix = 电能表的 PT 变比或接线按线电压，而节点按相电压（或相反）：修正电能表的 PT 变比设置或电压接线。
cm-cross-voltage-off = { $meter } 的 { $phase } 相为 { $meter_v } V，节点 { $node } 为 { $node_v } V（{ $off } %，超过 ±2 %）。
cm-cross-voltage-off-fix = 检查电能表的 PT 变比设置、其电压线与节点接在相同相别，以及节点量程。
cm-cross-power-ok = { $meter }：各带载相有功功率均为正。
cm-cross-power-unloaded = { $meter }：负荷太小，无法判断 CT 方向。
cm-cross-power-unloaded-fix = 在站点带负荷时（每相至少 50 W）重新检查。
cm-cross-power-reversed = { $meter }：{ $phases } 相有功功率为负：CT 反接。
cm-cross-power-reversed-fix = 先短接 CT，再将 { $phases } 相 CT 调转方向（P1 朝电源侧）或对调电能表处的 S1/S2 线。
cm-cross-power-all-export = { $meter }：三相有功功率均为负。
cm-cross-power-all-export-fix = 若站点不发电，则三只 CT 方向都反了：将其调转（P1 朝电源侧）。
cm-cross-none = 没有节点和电能表测量相同的相：无法交叉核对。
cm-cross-none-fix = 在传感节点旁有一只读相电压的电能表，调试时即可发现 PT 变比和接线错误。

cm-wait-uplinks = 正在发送测试工单
cm-uplink-ok = { $endpoint }（{ $channel }；路由：{ $kinds }）已接收测试工单：{ $answer }。
cm-uplink-failed = { $endpoint }（{ $channel }；路由：{ $kinds }）未接收测试工单：{ $answer }。
cm-uplink-refused = { $endpoint }（{ $channel }；路由：{ $kinds }）拒收测试工单：{ $answer }。
cm-uplink-fix = 检查 [delivery] 中 { $endpoint } 的地址、凭据和密钥，以及装置网络能否到达；向抢修台确认其接收端正常。
cm-uplink-none = 未配置投递端点：工单只保存在装置上。
cm-uplink-none-fix = 为抢修台添加 [[delivery.endpoint]]，并在 [routes] 中将抢修工单路由到它。
cm-uplink-no-repair = 抢修工单未路由到任何地方：抢修台不会知道本站点停电。
cm-uplink-no-repair-fix = 在 [routes] 中设置 `repair = ["<端点名>"]`。
cm-uplink-skipped = 未检查上行（--no-uplinks）。
cm-uplink-skipped-fix = 离开现场前不带 --no-uplinks 再运行一次。
cm-influx-ok = { $url } 的 InfluxDB：已写入并读回一个数据点。
cm-influx-write-failed = { $url } 的 InfluxDB 未接收数据点：{ $why }。
cm-influx-not-read = { $url } 的 InfluxDB 接收了数据点但未能读回：{ $why }。
cm-influx-fix = 检查 [influx] 的 url、数据库（或 bucket）、凭据，以及装置能否访问服务器。

cm-record-written = 记录已写入：{ $path }
cm-record-not-written = 记录无法写入 { $path }：{ $error }
cm-record-stored = 记录已存入数据库（{ $path }，第 { $id } 条）。
cm-record-not-stored = 记录无法存入数据库：{ $error }
cm-record-sent = 记录已发送到 { $endpoint }：{ $answer }
cm-record-not-sent = 记录无法发送到 { $endpoint }：{ $answer }
cm-record-no-desk = 记录未发送：未配置抢修路由。
cm-verify-ok = { $file }：签名有效（密钥 { $key }）。站点 { $site }，调试人员 { $crew }，{ $when }：{ $verdict }（通过 { $pass } 项，警告 { $warn } 项，失败 { $fail } 项）。
cm-verify-bad = { $file }：无效：{ $why }

cm-page-title = 调试记录
cm-page-site = 站点
cm-page-crew = 调试人员
cm-page-when = 时间
cm-page-appliance = 装置
cm-page-verdict = 结论
cm-page-signatures = 签字
cm-page-crew-sign = 调试人员
cm-page-customer-sign = 客户
cm-page-key = 装置密钥（Ed25519）：
cm-page-signature = 签名：
cm-page-verify = 用 `kare commission verify 文件` 校验电子记录。
cm-wait-port = 正在 { $port } 上监听传感节点
cm-port-node-found = { $port } 上有传感节点（编号 { $id }）在发送数据，但配置未使用此串口。
cm-port-node-found-fix = 将其添加为 [[node]]，port = "{ $port }"（--write-config 可自动写出）。
cm-wait-scan = 正在扫描 { $port } 上的 Modbus 电能表（最多 { $seconds } 秒）
cm-wait-dlt645 = 正在 { $port } 上查询 DL/T 645 电能表（广播读通信地址）
cm-scan-failed = 无法扫描 { $port }：{ $error }
cm-scan-nothing = { $port } 上无应答（波特率 { $bauds }，地址 { $addresses }）。
cm-scan-nothing-fix = 检查电能表已上电、RS-485 的 A/B 接线（不确定时对调 A、B）、终端电阻，以及表上显示的地址和波特率。
cm-scan-tcp-fix = 检查网关的地址和端口（Modbus TCP 为 502）、网关在本网络中，以及其面向电能表的串口设置。
cm-scan-bad-address = { $address } 不是 地址:端口（例如 192.168.1.20:502）。
cm-scan-found = { $port } 上地址 { $slave } 有 Modbus 设备{ $line }：{ $profile }（{ $volts }）。
cm-scan-unknown = { $port } 上地址 { $slave } 有 Modbus 设备应答{ $line }，但没有匹配的型号配置。
cm-scan-unknown-fix = 按电能表手册编写型号配置（edge-service/profiles/modbus/README.md），并在 [[modbus.device]] 中引用。
cm-scan-ambiguous = { $port } 上地址 { $slave } 的 Modbus 设备{ $line }符合多个型号配置：{ $candidates }。
cm-scan-ambiguous-fix = 查看电能表铭牌上的型号，在 [[modbus.device]] 中指定对应的型号配置（{ $candidates } 之一）。
cm-scan-elsewhere-fix = 配置中的总线 { $bus } 期望 { $was }：请改为 slave_id = { $slave }、baud = { $baud }（或使用 --write-config）。
cm-scan-dlt645 = { $port } 上有 DL/T 645 电能表 { $address }，{ $baud } 波特率。
cm-cross-power-mispaired = { $meter }：{ $phases } 相功率因数远低于其他相：该相 CT 与其电压不在同一相导体上。
cm-cross-power-mispaired-fix = 将每只 CT 装在与电能表同组电压端子同一相的导体上（A 相 CT 配 A 相电压……）；调转 CT 方向并不能解决。
cm-cross-power-no-pf = { $meter }：各带载相有功功率为正，但没有分相功率因数，无法排除 CT 接在其他相上。
cm-cross-power-no-pf-fix = 使用能读分相功率因数的型号配置，或人工核对 CT 与相别的对应关系。
cm-node-newer = { $port } 收到的帧全部使用比本 kare 更新的 pqlink 协议（{ $bytes } 字节）。
cm-scan-dlt645-several = { $port } 上有多只 DL/T 645 电能表同时应答广播（{ $bauds } 波特率）：应答相互冲突。
cm-scan-dlt645-several-fix = 广播只能找到总线上单独的一只表：请在 [[dlt645.device]] 中填入每只表铭牌上的地址后重新运行，届时按地址逐只读取。
