# Ruby net/http over HTTPS (ca_file): a GET with a custom header and a POST on one
# keep-alive connection. Usage: ruby ruby_tls_net_http.rb CA_PEM BASE
require 'net/http'
require 'openssl'
require 'uri'

ca, base = ARGV.fetch(0), URI(ARGV.fetch(1))
Net::HTTP.start(base.host, base.port, use_ssl: true, ca_file: ca,
                verify_mode: OpenSSL::SSL::VERIFY_PEER) do |http|
  get = Net::HTTP::Get.new('/hello?from=ruby-tls')
  get['X-Tapline-Test'] = 'ruby-tls'
  a = http.request(get)
  puts "GET #{a.code} #{a['X-Echo-Query']} #{a.body.strip}"
  post = Net::HTTP::Post.new('/echo?from=ruby-tls')
  post['Content-Type'] = 'text/plain'
  post.body = 'r' * 50_000
  b = http.request(post)
  puts "POST #{b.code}"
end
