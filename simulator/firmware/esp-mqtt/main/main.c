/*
 * An ESP32 device for the IoT dashboard, on ESP-IDF's esp-mqtt over MQTT 5 at QoS 1, following
 * the README's device contract (section "Device contract"), as the simulator does:
 *
 *   - a retained {"state":"online","session":N} on app/device/<id>/status on every connection,
 *     with a retained {"state":"offline","session":N} last will; N only grows (boot count from
 *     NVS in the high bits, connections since boot in the low ones);
 *   - a reading every interval_s on app/device/<id>/telemetry;
 *   - commands on app/device/<id>/cmd/<cmd_id>, answered on the publish's response topic with
 *     its correlation data (or on app/device/<id>/res/<cmd_id> when it has none): identify,
 *     set_interval {"secs": 1..86400}, anything else unknown_method; a command whose exp has
 *     passed is ignored; the last 8 executed ids and their answers are kept in RTC memory, so a
 *     command the server sends again (after a reconnect, a reboot) is answered, not run again;
 *   - desired state on app/device/<id>/desired ({"v":12,"state":{"interval_s":30}}), applied
 *     and reported on app/device/<id>/reported with the version applied; an empty
 *     app/device/<id>/desired/get after subscribing asks the server for it.
 *
 * Wi-Fi comes from ESP-IDF's example_connect(); broker, device id and key from menuconfig.
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cJSON.h"
#include "esp_attr.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "mqtt_client.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "protocol_examples_common.h"

#define DEVICE_ID CONFIG_DEVICE_ID
#define PREFIX "app/device/" DEVICE_ID "/"
#define CMD_PREFIX PREFIX "cmd/"
#define MEMORY 8
#define MAX_ID 64
#define MAX_ANSWER 160
#define MIN_INTERVAL_S 1
#define MAX_INTERVAL_S 86400
/* Commands and desired states over this are ignored (the server sends params <= 1 KiB). */
#define MAX_MESSAGE 4096

static const char *TAG = "device";

/* The last MEMORY executed commands and their answers, kept across resets (not power loss). */
typedef struct {
    char id[MAX_ID + 1];
    char answer[MAX_ANSWER];
} remembered_t;
RTC_DATA_ATTR static remembered_t s_memory[MEMORY];
RTC_DATA_ATTR static uint32_t s_memory_next;
/* Desired state applied, kept like the memory. */
RTC_DATA_ATTR static volatile uint32_t s_interval_s = CONFIG_INTERVAL_S;
RTC_DATA_ATTR static uint64_t s_desired_v;

static esp_mqtt_client_handle_t s_client;
static uint64_t s_boot;
static uint32_t s_connections;
static uint64_t s_session;
static char s_will[64];
static int64_t s_booted_us;
/* The task publishing readings, woken when the interval changes. */
static TaskHandle_t s_readings;

static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len > MAX_ID) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* One more boot, counted in NVS: sessions then only grow across reboots too. */
static uint64_t count_boot(void)
{
    nvs_handle_t nvs;
    uint32_t boots = 0;
    if (nvs_open("device", NVS_READWRITE, &nvs) == ESP_OK) {
        nvs_get_u32(nvs, "boots", &boots);
        boots++;
        nvs_set_u32(nvs, "boots", boots);
        nvs_commit(nvs);
        nvs_close(nvs);
    }
    return boots;
}

static void publish(const char *topic, const char *payload, int qos, int retain)
{
    if (esp_mqtt_client_publish(s_client, topic, payload, 0, qos, retain) < 0) {
        ESP_LOGW(TAG, "not sent on %s", topic);
    }
}

static void report(void)
{
    char body[96];
    snprintf(body, sizeof body, "{\"v\":%" PRIu64 ",\"state\":{\"interval_s\":%" PRIu32 "}}", s_desired_v,
             s_interval_s);
    publish(PREFIX "reported", body, 1, 0);
}

/* Runs a command; its answer in `answer`. Returns whether the interval changed. */
static bool execute(const char *method, const cJSON *params, char *answer, size_t size)
{
    if (strcmp(method, "identify") == 0) {
        /* Blink the board's LED here. */
        snprintf(answer, size, "{\"status\":\"ok\",\"result\":{\"blinked\":true}}");
        return false;
    }
    if (strcmp(method, "set_interval") == 0) {
        const cJSON *secs = cJSON_GetObjectItemCaseSensitive(params, "secs");
        double v = cJSON_IsNumber(secs) ? secs->valuedouble : -1;
        if (v < MIN_INTERVAL_S || v > MAX_INTERVAL_S || v != (double)(uint32_t)v) {
            snprintf(answer, size,
                     "{\"status\":\"error\",\"code\":\"invalid_params\",\"message\":\"secs must be a whole "
                     "number from 1 to 86400\"}");
            return false;
        }
        s_interval_s = (uint32_t)v;
        snprintf(answer, size, "{\"status\":\"ok\",\"result\":{\"interval_s\":%" PRIu32 "}}", s_interval_s);
        return true;
    }
    /* method is checked to be [A-Za-z0-9_.-]{1,64}: safe inside a JSON string. */
    snprintf(answer, size, "{\"status\":\"error\",\"code\":\"unknown_method\",\"message\":\"no method %s\"}", method);
    return false;
}

/* Answers on the response topic with the correlation data (MQTT 5), else on res/<cmd_id>. */
static void answer(const esp_mqtt_event_handle_t event, const char *id, const char *body)
{
    char topic[160];
    const esp_mqtt5_event_property_t *p = event->property;
    if (p != NULL && p->response_topic != NULL && p->response_topic_len > 0 &&
        p->response_topic_len < (int)sizeof topic) {
        memcpy(topic, p->response_topic, p->response_topic_len);
        topic[p->response_topic_len] = '\0';
        esp_mqtt5_publish_property_config_t props = {
            .correlation_data = (const char *)p->correlation_data,
            .correlation_data_len = p->correlation_data_len,
        };
        esp_mqtt5_client_set_publish_property(s_client, &props);
    } else {
        snprintf(topic, sizeof topic, PREFIX "res/%s", id);
    }
    publish(topic, body, 1, 0);
}

static void on_command(const esp_mqtt_event_handle_t event, const char *id, size_t id_len)
{
    char cmd_id[MAX_ID + 1];
    if (!valid_name(id, id_len) || event->data_len > MAX_MESSAGE) {
        return;
    }
    memcpy(cmd_id, id, id_len);
    cmd_id[id_len] = '\0';
    /* Executed before: the same answer, not run again. */
    for (int i = 0; i < MEMORY; i++) {
        if (strcmp(s_memory[i].id, cmd_id) == 0) {
            ESP_LOGI(TAG, "command %s again: answered from memory", cmd_id);
            answer(event, cmd_id, s_memory[i].answer);
            return;
        }
    }
    char body[MAX_ANSWER];
    cJSON *cmd = cJSON_ParseWithLength(event->data, event->data_len);
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(cmd, "method");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(cmd, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(cmd, "params");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(cmd, "exp");
    if (!cJSON_IsObject(cmd) || !cJSON_IsString(method) || !valid_name(method->valuestring, strlen(method->valuestring)) ||
        (cid != NULL && (!cJSON_IsString(cid) || strcmp(cid->valuestring, cmd_id) != 0)) ||
        (params != NULL && !cJSON_IsObject(params)) || (exp != NULL && !cJSON_IsNumber(exp))) {
        answer(event, cmd_id, "{\"status\":\"error\",\"code\":\"bad_command\",\"message\":\"unreadable command\"}");
        cJSON_Delete(cmd);
        return;
    }
    /* Without a clock yet (no SNTP answer), exp cannot be judged: run it. */
    time_t now = time(NULL);
    if (exp != NULL && now > 1600000000 && exp->valuedouble < (double)now) {
        ESP_LOGI(TAG, "command %s expired: ignored", cmd_id);
        cJSON_Delete(cmd);
        return;
    }
    bool changed = execute(method->valuestring, params, body, sizeof body);
    cJSON_Delete(cmd);
    remembered_t *slot = &s_memory[s_memory_next % MEMORY];
    strlcpy(slot->id, cmd_id, sizeof slot->id);
    strlcpy(slot->answer, body, sizeof slot->answer);
    s_memory_next = (s_memory_next + 1) % MEMORY;
    ESP_LOGI(TAG, "command %s executed: %s", cmd_id, body);
    answer(event, cmd_id, body);
    if (changed) {
        report();
        xTaskNotifyGive(s_readings);
    }
}

static void on_desired(const esp_mqtt_event_handle_t event)
{
    if (event->data_len > MAX_MESSAGE) {
        return;
    }
    cJSON *d = cJSON_ParseWithLength(event->data, event->data_len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "v");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(d, "state");
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || !cJSON_IsObject(state)) {
        cJSON_Delete(d);
        return;
    }
    uint64_t version = (uint64_t)v->valuedouble;
    /* Older than what is applied (delivered out of order): keep the newer, report it again. */
    if (version >= s_desired_v) {
        const cJSON *interval = cJSON_GetObjectItemCaseSensitive(state, "interval_s");
        if (cJSON_IsNumber(interval) && interval->valuedouble >= MIN_INTERVAL_S &&
            interval->valuedouble <= MAX_INTERVAL_S && interval->valuedouble == (double)(uint32_t)interval->valuedouble &&
            (uint32_t)interval->valuedouble != s_interval_s) {
            s_interval_s = (uint32_t)interval->valuedouble;
            xTaskNotifyGive(s_readings);
        }
        /* A value the device cannot take is left as it is: the report shows what is in force. */
        s_desired_v = version;
    }
    cJSON_Delete(d);
    report();
}

static void on_message(const esp_mqtt_event_handle_t event)
{
    /* A message larger than the buffer arrives in parts: not one of ours. */
    if (event->current_data_offset != 0 || event->data_len != event->total_data_len) {
        return;
    }
    const char *topic = event->topic;
    size_t len = event->topic_len;
    size_t cmd_len = strlen(CMD_PREFIX);
    if (len > cmd_len && strncmp(topic, CMD_PREFIX, cmd_len) == 0) {
        on_command(event, topic + cmd_len, len - cmd_len);
    } else if (len == strlen(PREFIX "desired") && strncmp(topic, PREFIX "desired", len) == 0) {
        on_desired(event);
    }
}

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    esp_mqtt_event_handle_t event = data;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_BEFORE_CONNECT: {
        /* Each connection is a new session, with its own will. */
        s_connections++;
        s_session = (s_boot << 20) | (s_connections & 0xfffff);
        snprintf(s_will, sizeof s_will, "{\"state\":\"offline\",\"session\":%" PRIu64 "}", s_session);
        esp_mqtt_client_config_t will = {.session.last_will = {.topic = PREFIX "status", .msg = s_will, .qos = 1, .retain = 1}};
        esp_mqtt_set_config(s_client, &will);
        break;
    }
    case MQTT_EVENT_CONNECTED: {
        char online[64];
        snprintf(online, sizeof online, "{\"state\":\"online\",\"session\":%" PRIu64 "}", s_session);
        publish(PREFIX "status", online, 1, 1);
        publish(PREFIX "attributes", "{\"fw\":\"1.0.0\",\"sdk\":\"esp-idf\"}", 1, 1);
        /* Clean sessions: subscribe on every connection, then ask for the desired state. */
        esp_mqtt_client_subscribe(s_client, PREFIX "cmd/+", 1);
        esp_mqtt_client_subscribe(s_client, PREFIX "desired", 1);
        publish(PREFIX "desired/get", "", 1, 0);
        break;
    }
    case MQTT_EVENT_DATA:
        on_message(event);
        break;
    default:
        break;
    }
}

void app_main(void)
{
    ESP_ERROR_CHECK(nvs_flash_init());
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    ESP_ERROR_CHECK(example_connect());
    esp_sntp_config_t sntp = ESP_NETIF_SNTP_DEFAULT_CONFIG("pool.ntp.org");
    esp_netif_sntp_init(&sntp);
    s_boot = count_boot();
    s_readings = xTaskGetCurrentTaskHandle();
    s_booted_us = esp_timer_get_time();
    if (s_interval_s < MIN_INTERVAL_S || s_interval_s > MAX_INTERVAL_S) {
        s_interval_s = CONFIG_INTERVAL_S;
    }

    esp_mqtt_client_config_t config = {
        .broker.address.uri = CONFIG_BROKER_URI,
        .credentials.client_id = DEVICE_ID,
        .credentials.username = DEVICE_ID,
        .credentials.authentication.password = CONFIG_DEVICE_KEY,
        .session.protocol_ver = MQTT_PROTOCOL_V_5,
        .session.keepalive = 30,
        .buffer.size = 2048,
    };
    s_client = esp_mqtt_client_init(&config);
    esp_mqtt_client_register_event(s_client, ESP_EVENT_ANY_ID, on_event, NULL);
    esp_mqtt_client_start(s_client);

    for (;;) {
        char body[192];
        int64_t uptime_s = (esp_timer_get_time() - s_booted_us) / 1000000;
        /* Put the board's sensors here. */
        float temperature = 21.0f + (float)(esp_random() % 100) / 100.0f;
        time_t now = time(NULL);
        if (now > 1600000000) {
            snprintf(body, sizeof body,
                     "{\"telemetry\":{\"temperature\":%.2f,\"uptime_s\":%" PRId64 "},\"timestamp\":%lld}",
                     temperature, uptime_s, (long long)now);
        } else {
            /* No clock yet: the server stamps it with its receive time. */
            snprintf(body, sizeof body, "{\"telemetry\":{\"temperature\":%.2f,\"uptime_s\":%" PRId64 "}}",
                     temperature, uptime_s);
        }
        publish(PREFIX "telemetry", body, 1, 0);
        /* Woken by a new interval: the next reading one new interval from now. */
        while (ulTaskNotifyTake(pdTRUE, pdMS_TO_TICKS((uint64_t)s_interval_s * 1000)) != 0) {
        }
    }
}
