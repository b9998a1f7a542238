<?php
// HTTP from PHP through both of its stacks: the curl extension (loaded RTLD_DEEPBIND,
// with its own libcurl) and its own stream layer (file_get_contents).
// php php_curl.php HTTP_BASE HTTPS_BASE CA_FILE
// Prints one line per request: what, status, body length and body hash — the same with
// and without tapline.
[$_, $http, $https, $ca] = $argv;

function line($what, $status, $body) {
    printf("%s %d %d %s\n", $what, $status, strlen($body), hash('sha256', $body));
}

// curl_exec over HTTP and HTTPS.
foreach ([["curl_exec_http", "$http/hello?php=curl_exec"],
          ["curl_exec_https", "$https/hello?php=curl_exec_tls"]] as [$what, $url]) {
    $c = curl_init($url);
    curl_setopt($c, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($c, CURLOPT_CAINFO, $ca);
    $body = curl_exec($c);
    if ($body === false) {
        fwrite(STDERR, "$what: " . curl_error($c) . "\n");
        exit(1);
    }
    line($what, curl_getinfo($c, CURLINFO_RESPONSE_CODE), $body);
    curl_close($c);
}

// curl_multi: 10 requests at once.
$mh = curl_multi_init();
$handles = [];
for ($i = 0; $i < 10; $i++) {
    $c = curl_init("$http/bytes/" . (1000 + $i) . "?php=multi$i");
    curl_setopt($c, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($c, CURLOPT_FORBID_REUSE, true);
    curl_multi_add_handle($mh, $c);
    $handles[] = $c;
}
do {
    $status = curl_multi_exec($mh, $running);
    if ($running) {
        curl_multi_select($mh, 1.0);
    }
} while ($running && $status == CURLM_OK);
foreach ($handles as $i => $c) {
    line("curl_multi_$i", curl_getinfo($c, CURLINFO_RESPONSE_CODE), curl_multi_getcontent($c));
    curl_multi_remove_handle($mh, $c);
    curl_close($c);
}
curl_multi_close($mh);

// PHP's own stream layer over HTTP and HTTPS.
$ctx = stream_context_create(["ssl" => ["cafile" => $ca], "http" => ["protocol_version" => 1.1,
                              "header" => "Connection: close"]]);
foreach ([["fgc_http", "$http/hello?php=fgc"], ["fgc_https", "$https/hello?php=fgc_tls"]]
         as [$what, $url]) {
    $body = file_get_contents($url, false, $ctx);
    if ($body === false) {
        fwrite(STDERR, "$what failed\n");
        exit(1);
    }
    preg_match('#^HTTP/\S+ (\d+)#', $http_response_header[0], $m);
    line($what, (int)$m[1], $body);
}
