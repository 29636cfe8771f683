// An ESP32 device for the IoT dashboard on Arduino with PubSubClient (MQTT 3.1.1), following the
// README's device contract (section "Device contract") as the simulator does with
// `simulator --command-qos 0`. PubSubClient publishes at QoS 0 only and this sketch subscribes
// at QoS 0, as such clients commonly do: the server then sees a command's receipt only by its
// answer. Its packet buffer is 256 bytes (topic and payload together): a command larger than
// that is dropped by PubSubClient unseen (the server times it out), so keep ids short and params
// small, or raise MQTT_BUFFER (an ESP32 has the memory).
//
// Libraries: PubSubClient (knolleary), ArduinoJson 7 (bblanchon). Board: any ESP32.

#include <ArduinoJson.h>
#include <Preferences.h>
#include <PubSubClient.h>
#include <WiFi.h>
#include <time.h>

// Yours to set.
const char *WIFI_SSID = "your-ssid";
const char *WIFI_PASSWORD = "your-password";
const char *BROKER = "192.168.1.10";
const uint16_t PORT = 1883;
#define DEVICE_ID "ESP32_ARD_01"      // [A-Za-z0-9_.-], 1 to 64; short leaves room in the buffer
const char *DEVICE_KEY = "";          // from Users & keys, or `server device key ESP32_ARD_01`
const uint32_t DEFAULT_INTERVAL_S = 30;

#define PREFIX "app/device/" DEVICE_ID "/"
#define MQTT_BUFFER 256
const int MEMORY = 8;
const int MAX_ID = 64;
const int MAX_ANSWER = 128;
const uint32_t MIN_INTERVAL_S = 1, MAX_INTERVAL_S = 86400;

// The last MEMORY executed commands and their answers, kept across resets (not power loss).
struct Remembered {
  char id[MAX_ID + 1];
  char answer[MAX_ANSWER];
};
RTC_DATA_ATTR Remembered memory_[MEMORY];
RTC_DATA_ATTR uint32_t memoryNext = 0;
RTC_DATA_ATTR uint32_t intervalS = DEFAULT_INTERVAL_S;
RTC_DATA_ATTR uint64_t desiredV = 0;

WiFiClient net;
PubSubClient mqtt(net);
uint64_t boot = 0;
uint32_t connections = 0;
uint64_t session = 0;
char will[64];
unsigned long lastReading = 0;
bool readingDue = true;

bool validName(const char *s, size_t len) {
  if (len == 0 || len > MAX_ID) return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!isalnum((unsigned char)c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

void publish(const char *topic, const char *payload, bool retain = false) {
  if (!mqtt.publish(topic, payload, retain)) {
    Serial.printf("not sent on %s (over %d bytes, or disconnected)\n", topic, MQTT_BUFFER);
  }
}

void report() {
  char body[96];
  snprintf(body, sizeof body, "{\"v\":%llu,\"state\":{\"interval_s\":%lu}}", (unsigned long long)desiredV,
           (unsigned long)intervalS);
  publish(PREFIX "reported", body);
}

void setIntervalS(uint32_t secs) {
  if (secs != intervalS) {
    intervalS = secs;
    // The next reading one new interval from now.
    lastReading = millis();
    readingDue = false;
  }
}

// Runs a command; its answer in `answer`. Returns whether the interval changed.
bool execute(const char *method, JsonObjectConst params, char *answer, size_t size) {
  if (strcmp(method, "identify") == 0) {
    for (int i = 0; i < 6; i++) {
      digitalWrite(LED_BUILTIN, i % 2 == 0);
      delay(150);
    }
    snprintf(answer, size, "{\"status\":\"ok\",\"result\":{\"blinked\":true}}");
    return false;
  }
  if (strcmp(method, "set_interval") == 0) {
    JsonVariantConst secs = params["secs"];
    if (!secs.is<uint32_t>() || secs.as<uint32_t>() < MIN_INTERVAL_S || secs.as<uint32_t>() > MAX_INTERVAL_S) {
      snprintf(answer, size,
               "{\"status\":\"error\",\"code\":\"invalid_params\",\"message\":\"secs must be a whole number "
               "from 1 to 86400\"}");
      return false;
    }
    uint32_t before = intervalS;
    setIntervalS(secs.as<uint32_t>());
    snprintf(answer, size, "{\"status\":\"ok\",\"result\":{\"interval_s\":%lu}}", (unsigned long)intervalS);
    return intervalS != before;
  }
  // method is checked to be [A-Za-z0-9_.-]{1,64}: safe inside a JSON string.
  snprintf(answer, size, "{\"status\":\"error\",\"code\":\"unknown_method\",\"message\":\"no method %s\"}", method);
  return false;
}

void answer(const char *cmdId, const char *body) {
  char topic[128];
  snprintf(topic, sizeof topic, PREFIX "res/%s", cmdId);
  publish(topic, body);
}

// PubSubClient hands over its own buffer: everything needed is copied out before publishing,
// which reuses it.
void onCommand(const char *id, size_t idLen, const byte *payload, unsigned int length) {
  if (!validName(id, idLen)) return;
  char cmdId[MAX_ID + 1];
  memcpy(cmdId, id, idLen);
  cmdId[idLen] = '\0';
  // Executed before: the same answer, not run again.
  for (int i = 0; i < MEMORY; i++) {
    if (strcmp(memory_[i].id, cmdId) == 0) {
      answer(cmdId, memory_[i].answer);
      return;
    }
  }
  JsonDocument cmd;  // copies the strings it keeps (the input is const)
  DeserializationError err = deserializeJson(cmd, payload, length);
  const char *method = cmd["method"];
  JsonVariantConst cid = cmd["id"];
  JsonVariantConst params = cmd["params"];
  JsonVariantConst exp = cmd["exp"];
  if (err || !cmd.is<JsonObject>() || method == nullptr || !validName(method, strlen(method)) ||
      (!cid.isNull() && (!cid.is<const char *>() || strcmp(cid.as<const char *>(), cmdId) != 0)) ||
      (!params.isNull() && !params.is<JsonObjectConst>()) || (!exp.isNull() && !exp.is<long long>())) {
    answer(cmdId, "{\"status\":\"error\",\"code\":\"bad_command\",\"message\":\"unreadable command\"}");
    return;
  }
  // Without a clock yet (no NTP answer), exp cannot be judged: run it.
  time_t now = time(nullptr);
  if (!exp.isNull() && now > 1600000000 && exp.as<long long>() < (long long)now) {
    Serial.printf("command %s expired: ignored\n", cmdId);
    return;
  }
  char body[MAX_ANSWER];
  bool changed = execute(method, params.as<JsonObjectConst>(), body, sizeof body);
  Remembered &slot = memory_[memoryNext % MEMORY];
  strlcpy(slot.id, cmdId, sizeof slot.id);
  strlcpy(slot.answer, body, sizeof slot.answer);
  memoryNext = (memoryNext + 1) % MEMORY;
  answer(cmdId, body);
  if (changed) report();
}

void onDesired(const byte *payload, unsigned int length) {
  JsonDocument d;
  if (deserializeJson(d, payload, length) || !d["v"].is<uint64_t>() || !d["state"].is<JsonObjectConst>()) return;
  uint64_t v = d["v"].as<uint64_t>();
  // Older than what is applied (delivered out of order): keep the newer, report it again.
  if (v >= desiredV) {
    JsonVariantConst interval = d["state"]["interval_s"];
    if (interval.is<uint32_t>() && interval.as<uint32_t>() >= MIN_INTERVAL_S &&
        interval.as<uint32_t>() <= MAX_INTERVAL_S) {
      setIntervalS(interval.as<uint32_t>());
    }
    // A value the device cannot take is left as it is: the report shows what is in force.
    desiredV = v;
  }
  report();
}

void onMessage(char *topic, byte *payload, unsigned int length) {
  const size_t cmdPrefix = strlen(PREFIX "cmd/");
  size_t len = strlen(topic);
  if (len > cmdPrefix && strncmp(topic, PREFIX "cmd/", cmdPrefix) == 0) {
    onCommand(topic + cmdPrefix, len - cmdPrefix, payload, length);
  } else if (strcmp(topic, PREFIX "desired") == 0) {
    onDesired(payload, length);
  }
}

void connect() {
  // Each connection is a new session, with its own will; sessions only grow across reboots
  // (the boot counter in the high bits).
  connections++;
  session = (boot << 20) | (connections & 0xfffff);
  snprintf(will, sizeof will, "{\"state\":\"offline\",\"session\":%llu}", (unsigned long long)session);
  if (!mqtt.connect(DEVICE_ID, DEVICE_ID, DEVICE_KEY, PREFIX "status", 1, true, will)) {
    Serial.printf("cannot connect (state %d); retrying in 2 s\n", mqtt.state());
    delay(2000);
    return;
  }
  char online[64];
  snprintf(online, sizeof online, "{\"state\":\"online\",\"session\":%llu}", (unsigned long long)session);
  publish(PREFIX "status", online, true);
  publish(PREFIX "attributes", "{\"fw\":\"1.0.0\",\"sdk\":\"arduino\"}", true);
  // Clean sessions: subscribe on every connection, then ask for the desired state.
  mqtt.subscribe(PREFIX "cmd/+", 0);
  mqtt.subscribe(PREFIX "desired", 0);
  publish(PREFIX "desired/get", "");
}

void setup() {
  Serial.begin(115200);
  pinMode(LED_BUILTIN, OUTPUT);
  Preferences prefs;
  prefs.begin("device", false);
  boot = prefs.getUInt("boots", 0) + 1;
  prefs.putUInt("boots", boot);
  prefs.end();
  if (intervalS < MIN_INTERVAL_S || intervalS > MAX_INTERVAL_S) intervalS = DEFAULT_INTERVAL_S;
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  configTime(0, 0, "pool.ntp.org");
  mqtt.setServer(BROKER, PORT);
  mqtt.setBufferSize(MQTT_BUFFER);
  mqtt.setKeepAlive(30);
  mqtt.setCallback(onMessage);
}

void loop() {
  if (!mqtt.connected()) {
    connect();
    return;
  }
  mqtt.loop();
  if (readingDue || millis() - lastReading >= intervalS * 1000UL) {
    readingDue = false;
    lastReading = millis();
    char body[160];
    // Put the board's sensors here.
    float temperature = 21.0f + (float)(esp_random() % 100) / 100.0f;
    time_t now = time(nullptr);
    if (now > 1600000000) {
      snprintf(body, sizeof body, "{\"telemetry\":{\"temperature\":%.2f,\"rssi\":%d,\"uptime_s\":%lu},\"timestamp\":%lld}",
               temperature, WiFi.RSSI(), (unsigned long)(esp_timer_get_time() / 1000000), (long long)now);
    } else {
      // No clock yet: the server stamps it with its receive time.
      snprintf(body, sizeof body, "{\"telemetry\":{\"temperature\":%.2f,\"rssi\":%d,\"uptime_s\":%lu}}", temperature,
               WiFi.RSSI(), (unsigned long)(esp_timer_get_time() / 1000000));
    }
    publish(PREFIX "telemetry", body);
  }
}
