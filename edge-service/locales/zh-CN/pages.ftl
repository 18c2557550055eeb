# kare 页面，简体中文。与 en/pages.ftl 的条目一一对应（有测试检查）。

nav-now = 实时
nav-events = 事件
nav-tickets = 工单
nav-report = 报告
nav-logout = 退出登录
lang-switch = 语言

now-title = 实时供电状态
supply-normal = 供电正常
supply-disturbed = 电压扰动中
supply-lost = 供电中断
now-sources = 监测终端
now-meters = 电表
now-frequency = 频率
now-no-sources = 未配置监测终端。
now-no-meters = 未配置电表。
now-open-tickets = 处理中的工单
now-none-open = 无处理中的工单。
now-live-note = 本页打开期间数值实时刷新。
health-connected = 在线
health-lost = 无信号
meter-online = 在线
meter-offline = 离线

events-title = 事件
events-count = 显示 { $count } 条事件
events-none = 没有符合条件的事件。
events-older = 更早的事件
filter-from = 起始
filter-to = 截止
filter-kind = 类型
filter-source = 来源
filter-any = 全部
filter-apply = 筛选

event-title = 事件 { $id }
event-profile = 有效值曲线（Urms(1/2)）
event-waveform = 波形
event-download-comtrade = 下载 COMTRADE 录波文件
event-no-profile = 该事件没有有效值曲线记录。
event-no-waveform = 该事件没有录波（监测终端在事件开始时录波）。
event-not-found = 没有编号为 { $id } 的事件。
event-open = 进行中
event-json = 事件 JSON 数据
event-back = 全部事件

tickets-title = 工单
tickets-none = 暂无工单。

report-page-title = 供电服务报告
period-kind = 统计周期
period-month = 月度
period-quarter = 季度
period-year = 年度
period-custom = 自定义区间
period-start = 包含日期
report-show = 生成
report-print = 打印
report-period-days = { $from } 至 { $last }（含）
report-no-store = 报告基于数据存储计算：请为本装置配置 [store]。

error-400 = 请求有误
error-404 = 未找到
error-other = 暂不可用
page-not-found = 没有地址为 { $path } 的页面。
error-back = 返回
error-query = 无法解析网址中的查询参数：{ $why }
error-bad-param = 参数“{ $name }”=“{ $value }”无效：{ $why }
error-store = 读取数据存储失败：{ $why }
why-date = 应为 1970 至 9999 年间的日期（YYYY-MM-DD）或 RFC 3339 时间。
why-to-before-from = 截止时间必须晚于起始时间。
why-kind = 应为以下之一：{ $kinds }。
why-limit = 应为 1 到 1000 之间的整数。
why-id = 应为事件编号（大于 0 的整数）。
why-lang = 页面语言可选 en 和 zh-CN。
why-unknown = 本页可用参数：{ $allowed }（以及 lang）。
why-period = 应为 month、quarter、year 或 custom。
why-missing = 自定义区间需要同时给出 from 和 to。
why-range-too-long = 自定义区间最长为十年。

q-voltage_a = A 相电压
q-voltage_b = B 相电压
q-voltage_c = C 相电压
q-voltage_ab = AB 线电压
q-voltage_bc = BC 线电压
q-voltage_ca = CA 线电压
q-current_a = A 相电流
q-current_b = B 相电流
q-current_c = C 相电流
q-current_n = 中性线电流
q-frequency = 频率
q-active_power_total = 总有功功率
q-active_power_a = A 相有功功率
q-active_power_b = B 相有功功率
q-active_power_c = C 相有功功率
q-reactive_power_total = 总无功功率
q-apparent_power_total = 总视在功率
q-power_factor_total = 总功率因数
q-power_factor_a = A 相功率因数
q-power_factor_b = B 相功率因数
q-power_factor_c = C 相功率因数
q-thd_u_a = A 相电压总谐波畸变率
q-thd_u_b = B 相电压总谐波畸变率
q-thd_u_c = C 相电压总谐波畸变率
q-thd_i_a = A 相电流总谐波畸变率
q-thd_i_b = B 相电流总谐波畸变率
q-thd_i_c = C 相电流总谐波畸变率
q-voltage_unbalance = 三相电压不平衡度
q-energy_import_kwh = 正向有功电量
q-energy_export_kwh = 反向有功电量
q-energy_reactive_import_kvarh = 正向无功电量
q-energy_reactive_export_kvarh = 反向无功电量
q-demand_kw = 需量
q-max_demand_kw = 最大需量
q-power_down_count = 失电次数

## 登录页（仅在配置了 [auth] 时）
login-title = 登录
login-user = 用户名
login-password = 密码
login-submit = 登录
login-failed = 用户名或密码错误。
login-no-users = 尚未设置用户：在设备上用 `kare passwd 用户名 --role viewer` 添加，在 [auth] users_file 中指定该文件，然后重启 kare。
