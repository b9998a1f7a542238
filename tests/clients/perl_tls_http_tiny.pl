#!/usr/bin/perl
# Perl HTTP::Tiny over HTTPS (IO::Socket::SSL / Net::SSLeay): a GET with a custom header
# and a POST, keep-alive. Usage: perl_tls_http_tiny.pl CA_PEM BASE
use strict;
use warnings;
use HTTP::Tiny;

my ($ca, $base) = @ARGV;
die "usage: $0 CA_PEM BASE\n" unless $base;
my $http = HTTP::Tiny->new(keep_alive => 1, verify_SSL => 1,
    SSL_options => { SSL_ca_file => $ca });
my $a = $http->get("$base/hello?from=perl-tiny-tls",
    { headers => { 'X-Tapline-Test' => 'perl-tiny-tls' } });
die "GET failed: $a->{status} $a->{content}\n" unless $a->{success};
chomp(my $body = $a->{content});
print "GET $a->{status} $a->{headers}{'x-echo-query'} $body\n";
my $payload = 'p' x 40000;
my $b = $http->request('POST', "$base/echo?from=perl-tiny-tls",
    { content => $payload, headers => { 'Content-Type' => 'text/plain' } });
die "POST failed: $b->{status}\n" unless $b->{success};
print "POST $b->{status}\n";
