# kare's pages, English. Every id here is in zh-CN/pages.ftl too (a test checks).

nav-now = Now
nav-events = Events
nav-tickets = Tickets
nav-report = Report
nav-logout = Log out
lang-switch = Language

now-title = Supply now
supply-normal = Supply normal
supply-disturbed = Voltage disturbance in progress
supply-lost = No supply
now-sources = Sensor nodes
now-meters = Meters
now-frequency = Frequency
now-no-sources = No sensor node configured.
now-no-meters = No meter configured.
now-open-tickets = Open tickets
now-none-open = No open ticket.
now-live-note = Values update live while this page is open.
health-connected = connected
health-lost = not heard
meter-online = online
meter-offline = offline

events-title = Events
events-count = { $count } events shown
events-none = No event matches.
events-older = Older events
filter-from = From
filter-to = To
filter-kind = Kind
filter-source = Source
filter-any = any
filter-apply = Filter

event-title = Event { $id }
event-profile = RMS profile (Urms(1/2))
event-waveform = Waveform
event-download-comtrade = Download COMTRADE
event-no-profile = No RMS profile recorded for this event.
event-no-waveform = No waveform captured for this event (sensor nodes capture at an event's start).
event-not-found = There is no event { $id }.
event-open = in progress
event-json = The event as JSON
event-back = All events

tickets-title = Tickets
tickets-none = No ticket.

report-page-title = Service report
period-kind = Period
period-month = Month
period-quarter = Quarter
period-year = Year
period-custom = Custom range
period-start = Containing the date
report-show = Show
report-print = Print
report-period-days = { $from } to { $last } inclusive
report-no-store = Reports are computed from the store: configure [store] for this appliance.

error-400 = Bad request
error-404 = Not found
error-other = Not available
page-not-found = There is no page at { $path }.
error-back = Back
error-query = The address's query could not be read: { $why }
error-bad-param = The parameter “{ $name }” = “{ $value }” is not accepted: { $why }
error-store = The store could not be read: { $why }
why-date = expected a date (YYYY-MM-DD) or an RFC 3339 time, in the years 1970 to 9999.
why-to-before-from = the end must be after the start.
why-kind = expected one of: { $kinds }.
why-limit = expected a whole number from 1 to 1000.
why-id = expected an event number (a whole number above 0).
why-lang = the pages speak en and zh-CN.
why-unknown = this page takes: { $allowed } (and lang).
why-period = expected month, quarter, year or custom.
why-missing = a custom range needs both from and to.
why-range-too-long = a custom range spans at most ten years.

q-voltage_a = Voltage A
q-voltage_b = Voltage B
q-voltage_c = Voltage C
q-voltage_ab = Voltage A–B
q-voltage_bc = Voltage B–C
q-voltage_ca = Voltage C–A
q-current_a = Current A
q-current_b = Current B
q-current_c = Current C
q-current_n = Neutral current
q-frequency = Frequency
q-active_power_total = Active power
q-active_power_a = Active power A
q-active_power_b = Active power B
q-active_power_c = Active power C
q-reactive_power_total = Reactive power
q-apparent_power_total = Apparent power
q-power_factor_total = Power factor
q-power_factor_a = Power factor A
q-power_factor_b = Power factor B
q-power_factor_c = Power factor C
q-thd_u_a = Voltage THD A
q-thd_u_b = Voltage THD B
q-thd_u_c = Voltage THD C
q-thd_i_a = Current THD A
q-thd_i_b = Current THD B
q-thd_i_c = Current THD C
q-voltage_unbalance = Voltage unbalance
q-energy_import_kwh = Import energy
q-energy_export_kwh = Export energy
q-energy_reactive_import_kvarh = Reactive energy (import)
q-energy_reactive_export_kvarh = Reactive energy (export)
q-demand_kw = Demand
q-max_demand_kw = Maximum demand
q-power_down_count = Power-down count

## The login page (only when [auth] is set)
login-title = Log in
login-user = User name
login-password = Password
login-submit = Log in
login-failed = Wrong user name or password.
login-no-users = No users are set up: add one on the appliance with `kare passwd USER --role viewer`, name the file in [auth] users_file, then restart kare.
